"""Whether a checkpoint places the red cube where the blue one is, or where it usually is ("place the cubes").

    .venv/bin/python research/placement_tracking.py runs/demo/train_ccol/best runs/demo/train_act/best

Runs sim-eval's closed loop (the same held-out scenes, executor and defaults) and records, for each scene, the red
cube's xy where the policy lets it go (the first gripper opening after the grasp, or the success); then fits
`placed = A [blue_x, blue_y, red_x, red_y, 1]` over the scenes (blue where it stands, red where it started) and
prints the slopes side by side: `blue x -> x` near 1 means the placement follows the blue cube along x; near 0, the
policy puts the cube at one learnt spot whatever the camera shows (success then depends on where blue happens to
be). The residual is what the fit leaves unexplained (mm). Simulator state is read for this diagnosis only.
"""

from __future__ import annotations

import argparse

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import numpy as np
import torch

from ccol_policy.eval_bag import GRIPPER_CLOSED_M
from ccol_policy.policy import CCoLPolicy
from ccol_sim.env import PandaTable
from ccol_sim.layouts import DEFAULT_LAYOUT, LAYOUTS
from ccol_sim.sim_eval import EVAL_SEED_OFFSET, rollout

TASK = "place the cubes"
MIN_PLACEMENTS = 10  # two scenes per fitted coefficient
SLOPES = ("blue x -> x", "blue y -> y", "red start x -> x", "red start y -> y")


class ReleaseProbe:
    """Wraps the simulator's command: the red cube's xy at the last command before the first reopening."""

    def __init__(self, env: PandaTable) -> None:
        self.env, self._command = env, env.command
        self.closed = self.released = False
        self.placed: np.ndarray | None = None
        env.command = self.command

    def command(self, q: np.ndarray, width: float | None = None) -> None:
        if width is not None and not self.released:
            if width < GRIPPER_CLOSED_M:
                self.closed = True
            elif self.closed:
                self.released = True
            if self.closed:
                self.placed = self.env.body_pos("red_cube")[:2].copy()
        self._command(q, width)

    def close(self) -> None:
        self.env.command = self._command


def track(checkpoint: str, episodes: int, seed: int, layout: str) -> dict[str, float]:
    torch.set_num_threads(1)  # batch-1 inference, as sim-eval's workers run it
    policy = CCoLPolicy.from_checkpoint(checkpoint, device="cpu")
    env = PandaTable()
    x, y, successes = [], [], 0
    for i in range(episodes):
        scene = seed + EVAL_SEED_OFFSET + i
        env.reset(scene, layout=layout)
        blue, red = env.body_pos("blue_cube")[:2].copy(), env.body_pos("red_cube")[:2].copy()
        probe = ReleaseProbe(env)
        r = rollout(env, policy, TASK, scene, 30.0, 12.0, layout=layout)
        probe.close()
        successes += r.success
        if probe.placed is not None:
            x.append([*blue, *red, 1.0])
            y.append(probe.placed)
    env.close()
    if len(y) < MIN_PLACEMENTS:
        raise SystemExit(f"{checkpoint}: only {len(y)} placements in {episodes} scenes, too few to fit; add --episodes")
    a, b = np.array(x), np.array(y)
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)  # (5, 2)
    residual = 1000 * (b - a @ coef).std(0)
    return {
        "success": successes,
        "placed": len(y),
        SLOPES[0]: coef[0, 0],
        SLOPES[1]: coef[1, 1],
        SLOPES[2]: coef[2, 0],
        SLOPES[3]: coef[3, 1],
        "residual x (mm)": residual[0],
        "residual y (mm)": residual[1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="sim-eval's --seed: the same held-out scenes")
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default=DEFAULT_LAYOUT)
    args = ap.parse_args()
    rows = {c: track(c, args.episodes, args.seed, args.layout) for c in args.checkpoints}
    columns = list(next(iter(rows.values())))
    print(f"| checkpoint | {' | '.join(columns)} |")
    print("|---|" + "---|" * len(columns))
    for c, row in rows.items():
        cells = [
            f"{row[k]}/{args.episodes}"
            if k == "success"
            else f"{row[k]:.0f}"
            if "mm" in k or k == "placed"
            else f"{row[k]:.2f}"
            for k in columns
        ]
        print(f"| {c} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
