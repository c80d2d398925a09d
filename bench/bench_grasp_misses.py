"""Where a checkpoint's grasps miss, and whose error the miss is: the policy's or the executor's.

    .venv/bin/python bench/bench_grasp_misses.py runs/demo/train_ccol/best --task "place the cubes" --episodes 20

Runs sim-eval's closed loop (the same held-out scenes, executor and defaults) and, at the first control step the
gripper is commanded shut, measures the xy distance (cm) from the named object to
- `hand`: the end-effector as it is,
- `executed`: the executed (ensembled, rate-limited) arm target,
- `newest`: the newest chunk's first target,
- `newest close`: the newest chunk's target at the step where that chunk itself closes the gripper.
When `newest close` is as far off as `hand`, the policy itself believes the hand is where it should grasp (a
perception or decision error); when only `hand` and `executed` are off, the executor or its tracking lost it.
"""

from __future__ import annotations

import argparse

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import mujoco
import numpy as np

from ccol_policy.evaluation import GRIPPER_CLOSED_M
from ccol_policy.policy import CCoLPolicy
from ccol_sim.env import TASK_OBJECT, TASKS, PandaTable
from ccol_sim.evaluate import EVAL_SEED_OFFSET, rollout
from ccol_sim.scene import SIM_TO_REAL

COLUMNS = ("hand", "executed", "newest", "newest close")


class GraspProbe:
    """Wraps the policy's chunk source and the simulator's command to measure the first close command."""

    def __init__(self, env: PandaTable, policy: CCoLPolicy, task: str) -> None:
        self.env, self.policy, self.obj = env, policy, TASK_OBJECT[task]
        self.fk_data = mujoco.MjData(env.model)
        self.chunk: np.ndarray | None = None
        self.row: dict[str, float] = {}
        self._predict, self._command = policy.predict_chunk, env.command
        policy.predict_chunk = self.predict
        env.command = self.command

    def fk_xy(self, q: np.ndarray) -> np.ndarray:
        d = self.fk_data
        d.qpos[:] = self.env.data.qpos
        d.qpos[self.env.ids.arm_qpos] = q[:7] - SIM_TO_REAL
        mujoco.mj_kinematics(self.env.model, d)
        return d.site_xpos[self.env.ids.ee_site][:2].copy()

    def predict(self, image: np.ndarray, q: np.ndarray, **kw) -> np.ndarray:
        self.chunk = self._predict(image, q, **kw)
        return self.chunk

    def command(self, q: np.ndarray, width: float | None = None) -> None:
        if width is not None and width < GRIPPER_CLOSED_M and not self.row and self.chunk is not None:
            obj = self.env.body_pos(self.obj)[:2]
            closes = np.nonzero(self.chunk[:, 7] < GRIPPER_CLOSED_M)[0]
            at_close = self.chunk[closes[0] if len(closes) else 0]
            points = (self.env.ee_pos()[:2], self.fk_xy(q), self.fk_xy(self.chunk[0]), self.fk_xy(at_close))
            self.row = {c: 100 * float(np.linalg.norm(p - obj)) for c, p in zip(COLUMNS, points)}
        self._command(q, width)

    def close(self) -> None:
        self.policy.predict_chunk, self.env.command = self._predict, self._command


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--task", choices=TASKS, default="place the cubes")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="sim-eval's --seed: the same held-out scenes")
    args = ap.parse_args()
    policy = CCoLPolicy.from_checkpoint(args.checkpoint, device="cpu")
    env = PandaTable()
    rows = []
    print(f"| scene | success | {' | '.join(f'{c} (cm)' for c in COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for i in range(args.episodes):
        probe = GraspProbe(env, policy, args.task)
        r = rollout(env, policy, args.task, args.seed + EVAL_SEED_OFFSET + i, 30.0, 12.0)
        probe.close()
        values = [probe.row.get(c, float("nan")) for c in COLUMNS]
        rows.append((r.success, *values))
        print(f"| {i} | {'yes' if r.success else 'no'} | " + " | ".join(f"{v:.1f}" for v in values) + " |", flush=True)
    a = np.array(rows, dtype=float)
    for name, sel in (("successes", a[:, 0] == 1), ("failures", a[:, 0] == 0)):
        if sel.any():
            med = np.nanmedian(a[sel, 1:], 0)
            print(f"median over {int(sel.sum())} {name}: " + ", ".join(f"{c} {v:.1f}" for c, v in zip(COLUMNS, med)))


if __name__ == "__main__":
    main()
