"""LeRobot's ACT trainer (lerobot-train) on a `ccol export-lerobot` directory, then LeRobot's `from_pretrained` on
the checkpoint it saved, and one action from it on a frame of the data set (developer check, not CI).

Runs under LeRobot's own Python (lerobot 0.4.4; the environment scripts/make_lerobot_fixture.py describes), as
scripts/check_lerobot_train.sh calls it:

    /tmp/lerobot_venv/bin/python scripts/lerobot_act_check.py DATASET --out RUN --steps 20

Everything that trains and loads is LeRobot's code: `lerobot.scripts.lerobot_train.main` with the arguments a
user passes to `lerobot-train`, `ACTPolicy.from_pretrained`, `make_pre_post_processors(pretrained_path=...)`,
`LeRobotDataset`. ACT's ResNet-18 starts from random weights (`--policy.pretrained_backbone_weights=null`: no hub
here). torchvision is imported as make_lerobot_fixture.import_torchvision does it (its compiled operators do not
load on a CPU torch; ACT uses only its Python models). The last line says PASS or FAIL.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("lerobot_act_check")
REPO_ID = "local/ccol_export"


def train(root: Path, out: Path, steps: int, batch_size: int) -> None:
    from lerobot.scripts.lerobot_train import main as lerobot_train

    sys.argv = [
        "lerobot-train",
        f"--dataset.repo_id={REPO_ID}",
        f"--dataset.root={root}",
        "--policy.type=act",
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        "--policy.pretrained_backbone_weights=null",
        "--policy.chunk_size=20",
        "--policy.n_action_steps=20",
        f"--steps={steps}",
        f"--batch_size={batch_size}",
        f"--save_freq={steps}",
        f"--log_freq={max(1, steps // 4)}",
        "--num_workers=0",
        "--wandb.enable=false",
        f"--output_dir={out}",
    ]
    log.info("%s", " ".join(sys.argv))
    lerobot_train()


def load_and_act(root: Path, out: Path) -> bool:
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    ckpt = out / "checkpoints/last/pretrained_model"
    policy = ACTPolicy.from_pretrained(str(ckpt))
    policy.eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt))
    ds = LeRobotDataset(REPO_ID, root=root)
    item = ds[len(ds) // 2]
    batch = {k: v.unsqueeze(0) if isinstance(v, torch.Tensor) else [v] for k, v in item.items()}
    with torch.no_grad():
        action = post(policy.select_action(pre(batch)))
    dim = ds.meta.features["action"]["shape"][0]
    step = json.loads((out / "checkpoints/last/training_state/training_step.json").read_text())["step"]
    ok = tuple(action.shape) == (1, dim) and bool(torch.isfinite(action).all())
    log.info("from_pretrained(%s): %s trained %s steps, action %s", ckpt, type(policy).__name__, step, action)
    return ok


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="a LeRobotDataset directory (ccol export-lerobot --out)")
    p.add_argument("--out", type=Path, required=True, help="lerobot-train's --output_dir (must not exist)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from importlib.metadata import version

    from make_lerobot_fixture import import_torchvision

    import_torchvision()
    log.info("lerobot %s, torch %s", version("lerobot"), version("torch"))
    try:
        train(args.root.resolve(), args.out.resolve(), args.steps, args.batch_size)
        ok = load_and_act(args.root.resolve(), args.out.resolve())
    except Exception as exc:  # the outcome is the report: say exactly what failed
        log.exception("lerobot-train or from_pretrained failed: %s: %s", type(exc).__name__, exc)
        ok = False
    log.info("PASS: LeRobot trained ACT on the export and loaded its checkpoint" if ok else "FAIL: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
