"""What the arm is asked to do: the desired joint accelerations of policy_node's stream as joint_trajectory_controller
follows it, at several node rates, side by side from one run.

    .venv/bin/python bench/bench_stream.py --checkpoint runs/demo/train_ccol/best --episodes 5

Each held-out scene of `ccol sim-eval` runs the node's path without ROS (`ccol_sim.sim_eval.run_episode`): the
checkpoint at the node rate, its `ClosedLoopExecutor` with policy_node's defaults, each message handed to the
`JTCFollower` (ros2_controllers' rules, updated every 2 ms of simulated time; start states: desired as Jazzy with
interpolate_from_desired_state, measured as Humble by default) which the simulated arm follows. Prints per node
rate and start state: success, the followed trajectory's peak and 99th-percentile desired |acceleration| per joint,
and the peak over the Panda's datasheet limit (the figure: <= 1).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from ccol_policy.checkpoint import load_checkpoint
from ccol_policy.control import control_rate_hz
from ccol_policy.jtc import StartState
from ccol_policy.policy import CCoLPolicy
from ccol_policy.robots import LIMITS
from ccol_sim.env import PandaTable
from ccol_sim.layouts import DEFAULT_LAYOUT
from ccol_sim.sim_eval import EVAL_SEED_OFFSET, run_episode, sim_executor
from ccol_sim.teacher import TCP_FLOOR_Z


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--task", default="lift the pen")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument("--rates", default="30,67,100", help="node rates (Hz)")
    p.add_argument("--max-seconds", type=float, default=12.0)
    p.add_argument("--layout", default=DEFAULT_LAYOUT)
    args = p.parse_args()
    torch.set_num_threads(1)
    policy = CCoLPolicy.from_checkpoint(args.checkpoint, device="cpu")
    policy.set_instruction(args.task)
    rate = control_rate_hz(load_checkpoint(args.checkpoint).meta)
    env = PandaTable(render_size=(160, 120))
    limit = LIMITS["panda"].acceleration
    print(f"{args.task!r}, {args.episodes} held-out scenes, control rate {rate:g} Hz; Panda limits {limit.tolist()}")
    print(
        "| node rate | JTC start | success | peak desired |acc| per joint (rad/s^2) | p99 (worst joint) | peak/limit |"
    )
    print("|---|---|---|---|---|---|")
    for node_rate in (float(r) for r in args.rates.split(",")):
        for start in (StartState.DESIRED, StartState.MEASURED):
            peaks, ok, t0 = [], 0, time.perf_counter()
            for i in range(args.episodes):
                ex = sim_executor(rate, policy.chunk_size, policy.cfg.model.action_dim, tcp_floor_z=TCP_FLOOR_Z)
                r = run_episode(
                    env,
                    lambda step, image, q: policy.predict_chunk(image, q, frame_key=image),
                    ex,
                    args.task,
                    EVAL_SEED_OFFSET + i,
                    rate,
                    int(args.max_seconds * rate),
                    layout=args.layout,
                    node_rate_hz=node_rate,
                    start_state=start,
                    accelerations=(trace := []),
                )
                ok += r.success
                peaks.append(np.abs(np.array(trace)))
            a = np.concatenate(peaks)
            peak, p99 = a.max(0), np.percentile(a, 99, axis=0)
            print(
                f"| {node_rate:g} Hz | {start.value} | {ok}/{args.episodes} | {np.round(peak, 2).tolist()} | "
                f"{p99.max():.2f} | {(peak / limit).max():.2f} |",
                flush=True,
            )
            print(f"  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
