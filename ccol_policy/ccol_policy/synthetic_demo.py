"""The embedded default job (`ccol demo`): synthetic demonstrations -> training -> held-out evaluation.

Re-running it continues where it stopped: the data set is kept, training resumes from `latest/` (and does
nothing when it already reached its step count), the evaluation is recomputed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np

from ccol_policy.config import load_config, resolve_preset
from ccol_policy.control import TemporalEnsembler
from ccol_policy.metrics import horizon_errors, smoothness
from ccol_policy.policy import CCoLPolicy
from ccol_policy.synthetic import TASKS, make_dataset
from ccol_policy.training import train

log = logging.getLogger(__name__)


def evaluate_episodes(policy: CCoLPolicy, files: list[Path], swap_instruction: bool = False) -> dict[str, dict]:
    """Open-loop evaluation on recorded episodes: predicted chunks against the recorded future actions.

    With `swap_instruction` every episode is given another task's instruction: the error should grow if the
    policy listens to the words.
    """
    k = policy.chunk_size
    per_task: dict[str, dict[str, list]] = {}
    for path in files:
        with h5py.File(path, "r") as f:
            qpos, action = f["observations/qpos"][()], f["action"][()]
            images = f[f"observations/images/{policy.cameras[0]}"][()]
            task = str(f.attrs["instruction"])
        instruction = TASKS[(TASKS.index(task) + 1) % len(TASKS)] if swap_instruction else task
        preds, targets, valid = [], [], []
        ens = TemporalEnsembler(k, action.shape[1])
        executed = []
        for t in range(len(qpos)):
            chunk = policy.predict_chunk(images[t], qpos[t], instruction)
            ens.add(t, chunk)
            executed.append(ens.action(t))
            tgt = action[t : t + k]
            n = len(tgt)
            preds.append(chunk)
            targets.append(np.concatenate([tgt, np.repeat(tgt[-1:], k - n, 0)]))
            valid.append(np.arange(k) < n)
        rows = per_task.setdefault(task, {"pred": [], "target": [], "valid": [], "executed": [], "recorded": []})
        rows["pred"] += preds
        rows["target"] += targets
        rows["valid"] += valid
        rows["executed"].append(np.stack(executed))
        rows["recorded"].append(action)
    out = {}
    for task, r in per_task.items():
        errs = horizon_errors(np.stack(r["pred"]), np.stack(r["target"]), np.stack(r["valid"]), [1, 10, k])
        ex = [smoothness(e) for e in r["executed"]]
        out[task] = {
            "episodes": len(r["executed"]),
            **errs,
            "executed_l1": float(np.mean([np.abs(e - a).mean() for e, a in zip(r["executed"], r["recorded"])])),
            **{f"executed_{key}": float(np.mean([s[key] for s in ex])) for key in ex[0]},
            "_trajectories": (r["executed"][0], r["recorded"][0]),
        }
    return out


def plot_trajectories(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5), squeeze=False)
    for ax, (task, r) in zip(axes[0], results.items()):
        executed, recorded = r["_trajectories"]
        for j in (0, 1, 3, 7):
            (line,) = ax.plot(recorded[:, j], "--", alpha=0.6)
            ax.plot(executed[:, j], color=line.get_color(), label=f"joint {j + 1}" if j < 7 else "gripper")
        ax.set_title(f"{task!r}: policy (solid) vs demo (dashed)")
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_demo(out: Path, steps: int | None = None, episodes_per_task: int = 10, ablation: str | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    data, test = out / "data", out / "test_data"
    for directory, n, seed in ((data, episodes_per_task, 0), (test, 2, 1)):
        if len(list(directory.glob("*.hdf5"))) != n * len(TASKS):
            log.info("writing %d synthetic episodes to %s", n * len(TASKS), directory)
            make_dataset(directory, n, seed=seed)
    overrides = {"train.steps": steps} if steps else {}
    cfg = load_config(resolve_preset("small_cpu"), overrides=overrides, ablation=ablation)
    run_dir = out / "train"
    resume = (run_dir / "latest" / "train_state.pt").is_file()
    result = train(cfg, [data], run_dir, device="cpu", resume=resume)
    policy = CCoLPolicy.from_checkpoint(run_dir / "best", device="cpu")
    files = sorted(test.glob("*.hdf5"))
    results = evaluate_episodes(policy, files)
    swapped = evaluate_episodes(policy, files, swap_instruction=True)
    plot_trajectories(results, out / "trajectories.png")
    k = policy.chunk_size
    lines = [
        "| task | episodes | L1@1 | L1@10 | L1@k | executed L1 | L1@k, wrong instruction | accel. fluctuation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, r in results.items():
        lines.append(
            f"| {task} | {r['episodes']} | {r['l1@1']:.4f} | {r['l1@10']:.4f} | {r[f'l1@{k}']:.4f} | "
            f"{r['executed_l1']:.4f} | {swapped[task][f'l1@{k}']:.4f} | {r['executed_acceleration_fluctuation']:.5f} |"
        )
    table = "\n".join(lines)
    report = {
        "train_steps": result.step,
        "best_val_l1": result.best_val_l1,
        "samples_per_s": result.samples_per_s,
        "held_out": {t: {k2: v for k2, v in r.items() if not k2.startswith("_")} for t, r in results.items()},
        "held_out_wrong_instruction": {
            t: {k2: v for k2, v in r.items() if not k2.startswith("_")} for t, r in swapped.items()
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(
        f"# CCoL demo\n\nHeld-out action error (radians / metres) of {run_dir / 'best'}:\n\n{table}\n\n"
        "![loss](train/loss_curve.png)\n\n![trajectories](trajectories.png)\n"
    )
    log.info("held-out evaluation (joint radians; lower is better):\n%s", table)
    log.info(
        "loss curve: %s, trajectories: %s, report: %s",
        run_dir / "loss_curve.png",
        out / "trajectories.png",
        out / "report.md",
    )
    return report
