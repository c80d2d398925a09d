"""Is it perception or control? The demo policy beside the same policy given the true object positions.

    .venv/bin/python research/oracle_state.py runs/demo/dataset --vision-checkpoint runs/demo/train_ccol/best
    .venv/bin/python research/oracle_state.py runs/demo/dataset --steps 12000 --episodes 20

Copies the HDF5 episodes with the scene layout of each episode's seed (pen x, y, yaw; red and blue cube x, y;
zone x, y: 9 numbers) appended to the proprioception, trains the `small_cpu` preset on the copy with the same
steps and seed, and runs both policies closed loop on the same held-out scenes through the executor of
`sim-eval`. The oracle sees the layout at every step; that is simulator state, which no deployed policy gets:
this is an upper bound for a perfect scene estimate, a diagnosis and never a policy. If the oracle fails where
the vision policy fails, learning the motion on this budget is the bottleneck, not the camera.
"""

from __future__ import annotations

import argparse
import shutil
import time
from functools import partial
from pathlib import Path

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import h5py
import numpy as np

from ccol_policy.checkpoint import load_checkpoint
from ccol_policy.config import load_config, resolve_preset
from ccol_policy.control import control_rate_hz
from ccol_policy.training import Trainer
from ccol_sim.env import TASKS, PandaTable
from ccol_sim.layouts import UNNAMED_LAYOUT
from ccol_sim.parallel import run_jobs
from ccol_sim.reference import layout_features
from ccol_sim.sim_eval import EVAL_SEED_OFFSET, EvalWorker, run_episode, sim_eval, sim_executor, wilson_interval


def dataset_layout(data: Path) -> str:
    """The scene layout the dataset's episodes were recorded in (HDF5 attribute; older episodes: `wide`)."""
    with h5py.File(next(data.glob("*.hdf5"))) as h:
        return str(h.attrs.get("layout", UNNAMED_LAYOUT))


def oracle_dataset(src: Path, dst: Path) -> None:
    """The episodes of src with the layout appended to observations/qpos (T, S + 9); dst appears only when
    complete, so an interrupted copy is redone."""
    part = dst.with_name(dst.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    env = PandaTable()
    try:
        for f in sorted(src.glob("*.hdf5")):
            shutil.copy(f, part / f.name)
            with h5py.File(part / f.name, "r+") as h:
                if "seed" not in h.attrs:
                    raise SystemExit(f"{f}: no 'seed' attribute; the oracle needs simulator episodes")
                q = h["observations/qpos"][()]
                lay = str(h.attrs.get("layout", UNNAMED_LAYOUT))
                extra = np.repeat(layout_features(env, int(h.attrs["seed"]), lay)[None], len(q), 0)
                del h["observations/qpos"]
                h["observations/qpos"] = np.concatenate([q, extra], 1)
    finally:
        env.close()
    part.rename(dst)


def _episode(w: EvalWorker, job: tuple[str, int, str], rate_hz: float, max_seconds: float) -> tuple[str, bool]:
    task, seed, layout = job
    w.policy.set_instruction(task)
    p = w.policy
    executor = sim_executor(rate_hz, p.chunk_size, p.cfg.model.action_dim)
    extra = layout_features(w.env, seed, layout)
    r = run_episode(
        w.env,
        lambda step, image, q: p.predict_chunk(image, np.concatenate([q, extra])),
        executor,
        task,
        seed,
        rate_hz,
        int(max_seconds * rate_hz),
        layout=layout,
    )
    return task, r.success


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="a dataset of simulator HDF5 episodes (build-dataset output)")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_oracle"))
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--episodes", type=int, default=10, help="closed-loop episodes per task")
    ap.add_argument("--vision-checkpoint", help="the vision policy to compare (trained on `data`, same steps)")
    ap.add_argument("--max-seconds", type=float, default=12.0)
    args = ap.parse_args()

    data = args.out / "dataset"
    if not data.exists():
        oracle_dataset(args.data, data)
    t0 = time.time()
    ckpt = args.out / "train" / "best"
    if not ckpt.exists():
        first = next(data.glob("*.hdf5"))
        with h5py.File(first) as h:
            state_dim = h["observations/qpos"].shape[1]
        cfg = load_config(
            resolve_preset("small_cpu"), overrides={"train.steps": args.steps, "model.state_dim": state_dim}
        )
        Trainer(cfg, [data], args.out / "train", device="cpu").run()
    train_min = (time.time() - t0) / 60
    rate = control_rate_hz(load_checkpoint(ckpt).meta)

    layout = dataset_layout(args.data)
    jobs = [(t, EVAL_SEED_OFFSET + i, layout) for t in TASKS for i in range(args.episodes)]
    results = run_jobs(
        EvalWorker,
        (str(ckpt), "cpu", (160, 120)),
        partial(_episode, rate_hz=rate, max_seconds=args.max_seconds),
        jobs,
        desc="oracle closed loop",
    )
    rows = {"oracle layout (simulator state)": {t: [s for task, s in results if task == t] for t in TASKS}}
    if args.vision_checkpoint:
        report = sim_eval(args.vision_checkpoint, args.out / "vision_eval", episodes=args.episodes, layout=layout)
        rows["camera (the policy)"] = {
            t: [True] * r["successes"] + [False] * (r["episodes"] - r["successes"]) for t, r in report["tasks"].items()
        }
    print(
        f"\n{args.steps} training steps ({train_min:.1f} min for the oracle), {args.episodes} held-out scenes per task"
    )
    print("| input | " + " | ".join(TASKS) + " |")
    print("|---|" + "---|" * len(TASKS))
    for name, per_task in rows.items():
        cells = []
        for t in TASKS:
            s = per_task[t]
            lo, hi = wilson_interval(sum(s), len(s))
            cells.append(f"{sum(s)}/{len(s)} ({100 * lo:.0f}-{100 * hi:.0f}%)")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
