"""Where a checkpoint's grasps miss, and whose error the miss is: the policy's or the executor's.

    .venv/bin/python research/grasp_misses.py runs/demo/train_ccol/best --task "place the cubes" --episodes 20

Runs sim-eval's closed loop (the same held-out scenes, executor and defaults) and, at the first control step the
gripper is commanded shut, measures the xy distance (cm) from the named object to
- `hand`: the end-effector as it is,
- `executed`: the executed (ensembled, rate-limited) arm target,
- `newest`: the newest chunk's first target,
- `newest close`: the newest chunk's target at the step where that chunk itself closes the gripper.
When `newest close` is as far off as `hand`, the policy itself believes the hand is where it should grasp (a
perception or decision error); when only `hand` and `executed` are off, the executor or its tracking lost it.

`follows`: at that step the object is moved by --shift cm along +-x and +-y (rendering only, the simulation is
restored) and the policy asked again; the share of the shift its closing target moves along (1: it grasps where it
sees the object, 0: it ignores where the object is at this moment). At the close itself the fingers are already
around the object and no demonstration ever moves away again, so 0 there is expected even of a policy that looks;
`plan follows` asks earlier: at the first step whose newest chunk plans to close the gripper (up to one chunk, 1 s,
ahead; `plan lead` is how many control steps ahead), the share of the shift that planned closing target follows.
`start follows`: the same at the first step, for the end of the first chunk (which covers only part of the reach,
so less than 1 even for a policy that looks).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import mujoco
import numpy as np

from ccol_policy.eval_bag import GRIPPER_CLOSED_M
from ccol_policy.kinematics import joint_frames
from ccol_policy.policy import CCoLPolicy
from ccol_sim.env import TASK_OBJECT, TASKS, PandaTable
from ccol_sim.sim_eval import EVAL_SEED_OFFSET, rollout

COLUMNS = ("hand", "executed", "newest", "newest close", "follows", "plan follows", "plan lead", "start follows")
SHARES = ("follows", "plan follows", "start follows")
STEPS = ("plan lead",)


class GraspProbe:
    """Wraps the policy's chunk source and the simulator's command to measure the first close command."""

    def __init__(self, env: PandaTable, policy: CCoLPolicy, task: str, shift_m: float) -> None:
        self.env, self.policy, self.obj, self.shift = env, policy, TASK_OBJECT[task], shift_m
        self.saved = mujoco.MjData(env.model)
        self.chunk: np.ndarray | None = None
        self.q: np.ndarray | None = None
        self.row: dict[str, float] = {}
        self._predict, self._command = policy.predict_chunk, env.command
        policy.predict_chunk = self.predict
        env.command = self.command

    @staticmethod
    def fk_xy(q: np.ndarray) -> np.ndarray:
        """Franka's hand TCP in the base frame (the simulated arm's end-effector site within 0.5 mm), xy."""
        return joint_frames(q[:7])[1][0, :2, 3]

    def predict(self, image: np.ndarray, q: np.ndarray, **kw) -> np.ndarray:
        first = self.chunk is None
        self.chunk, self.q = self._predict(image, q, **kw), q
        if first:
            self.row["start follows"] = self.follows(self.fk_xy(self.chunk[-1]), lambda c: c[-1])
        elif "plan follows" not in self.row and "hand" not in self.row:
            lead = self.first_close(self.chunk)
            if lead is not None:  # the shifted chunks are read at the same step ahead
                self.row["plan lead"] = float(lead)
                self.row["plan follows"] = self.follows(self.fk_xy(self.chunk[lead]), lambda c: c[lead])
        return self.chunk

    @staticmethod
    def first_close(chunk: np.ndarray) -> int | None:
        """The first step of a (k, 8) chunk that commands the gripper shut, or None."""
        closes = np.nonzero(chunk[:, 7] < GRIPPER_CLOSED_M)[0]
        return int(closes[0]) if len(closes) else None

    @classmethod
    def close_target(cls, chunk: np.ndarray) -> np.ndarray:
        return chunk[cls.first_close(chunk) or 0]

    def follows(self, base_xy: np.ndarray, pick: Callable[[np.ndarray], np.ndarray]) -> float:
        """Mean share of an object shift that the target `pick` takes from a chunk follows (the simulation
        restored afterwards)."""
        m, d = self.env.model, self.env.data
        mujoco.mj_copyData(self.saved, m, d)
        adr = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, self.obj)]
        gains = []
        for step in np.array([[1, 0], [-1, 0], [0, 1], [0, -1]]) * self.shift:
            d.qpos[adr : adr + 2] = self.saved.qpos[adr : adr + 2] + step
            mujoco.mj_forward(m, d)
            moved = self.fk_xy(pick(self._predict(self.env.render(), self.q)))
            gains.append(float((moved - base_xy) @ step) / self.shift**2)
        mujoco.mj_copyData(d, m, self.saved)
        return float(np.mean(gains))

    def command(self, q: np.ndarray, width: float | None = None) -> None:
        if width is not None and width < GRIPPER_CLOSED_M and "hand" not in self.row and self.chunk is not None:
            obj = self.env.body_pos(self.obj)[:2]
            at_close = self.fk_xy(self.close_target(self.chunk))
            points = (self.env.ee_pos()[:2], self.fk_xy(q), self.fk_xy(self.chunk[0]), at_close)
            self.row.update({c: 100 * float(np.linalg.norm(p - obj)) for c, p in zip(COLUMNS, points)})
            self.row["follows"] = self.follows(at_close, self.close_target)
        self._command(q, width)

    def close(self) -> None:
        self.policy.predict_chunk, self.env.command = self._predict, self._command


def _cell(column: str, value: float) -> str:
    return f"{value:.2f}" if column in SHARES else f"{value:.0f}" if column in STEPS else f"{value:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--task", choices=TASKS, default="place the cubes")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="sim-eval's --seed: the same held-out scenes")
    ap.add_argument("--shift", type=float, default=3.0, help="cm the object is moved for `follows`")
    args = ap.parse_args()
    policy = CCoLPolicy.from_checkpoint(args.checkpoint, device="cpu")
    env = PandaTable()
    rows = []
    print(f"| scene | success | {' | '.join(c if c in SHARES + STEPS else f'{c} (cm)' for c in COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for i in range(args.episodes):
        probe = GraspProbe(env, policy, args.task, args.shift / 100)
        r = rollout(env, policy, args.task, args.seed + EVAL_SEED_OFFSET + i, 30.0, 12.0)
        probe.close()
        values = [probe.row.get(c, float("nan")) for c in COLUMNS]
        rows.append((r.success, *values))
        cells = " | ".join(_cell(c, v) for c, v in zip(COLUMNS, values))
        print(f"| {i} | {'yes' if r.success else 'no'} | {cells} |", flush=True)
    a = np.array(rows, dtype=float)
    for name, sel in (("successes", a[:, 0] == 1), ("failures", a[:, 0] == 0)):
        if sel.any():
            med = np.nanmedian(a[sel, 1:], 0)
            print(f"median over {int(sel.sum())} {name}: " + ", ".join(f"{c} {v:.2f}" for c, v in zip(COLUMNS, med)))


if __name__ == "__main__":
    main()
