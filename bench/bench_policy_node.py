"""End-to-end latency of policy_node over DDS: camera image stamp -> trajectory published, and the achieved rate.

    .venv/bin/python bench/bench_policy_node.py --checkpoint runs/demo/train_ccol/best --rate 67 --seconds 10 --compare

A fake Franka (joint states at 100 Hz) and a fake D435i (640x480 rgb8 at 30 Hz) publish with current stamps
from another process;
the node runs at --rate. Prints the node's inference latency, stamp-to-publish latency (median / p99) and the
achieved command rate against the requested one (the ratio is the figure); --compare runs the node as it was
before docs/real_time.md beside it, in the same process.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import rclpy
from rclpy.executors import SingleThreadedExecutor
from ros_harness import spin_for
from trajectory_msgs.msg import JointTrajectory

from ccol_policy.policy import CCoLPolicy
from ccol_policy.policy_node import PolicyNode

VARIANTS = {
    # name: (cpu_threads, reuse the frame's visual tokens)
    "node": (None, True),  # the node's defaults
    "2 threads, no token reuse": (2, False),  # the node before docs/real_time.md
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--rate", type=float, default=67.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--device", default="auto")
    p.add_argument("--compare", action="store_true", help="also run the node as it was (2 threads, no token reuse)")
    args = p.parse_args()
    robot_proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_robot_process.py")), "fr3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rows = [run(args, name, *VARIANTS[name]) for name in (VARIANTS if args.compare else ["node"])]
    finally:
        robot_proc.terminate()
        robot_proc.wait(5)
    print(f"checkpoint {args.checkpoint}, requested {args.rate:.0f} Hz, {args.seconds:.0f} s each")
    print("| variant | inference ms median / p99 | image stamp -> publish ms median / p99 | achieved Hz | ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['inf_med']:.1f} / {r['inf_p99']:.1f} | {r['e2e_med']:.1f} / {r['e2e_p99']:.1f} "
            f"| {r['rate']:.1f} | {r['rate'] / args.rate:.2f} |"
        )


def run(args: argparse.Namespace, name: str, threads: int | None, reuse: bool) -> dict:
    rclpy.init()
    policy = CCoLPolicy.from_checkpoint(args.checkpoint, device=args.device, half=True)
    if not reuse:  # every cycle encodes its frame, as before the node passed frame keys
        predict = policy.predict_chunk
        policy.predict_chunk = lambda *a, frame_key=None, **k: predict(*a, **k)  # type: ignore[method-assign]
    probe = rclpy.create_node("bench_probe")
    overrides = {
        "arm_id": "fr3",
        "instruction": policy.ckpt.instructions[0],
        "rate_hz": args.rate,
        "execution_mode": "ensemble",
        "start_enabled": True,
        "gripper_mode": "topic",
    }
    if threads is not None:
        overrides["cpu_threads"] = threads
    node = PolicyNode(policy, overrides)
    received: list[float] = []
    probe.create_subscription(
        JointTrajectory,
        "/joint_trajectory_controller/joint_trajectory",
        lambda m: received.append(time.perf_counter()),
        10,
    )
    ex = SingleThreadedExecutor()
    ex.add_node(probe)
    ex.add_node(node)
    spin_for(ex, 2.0)  # warm up
    node.latency = type(node.latency)()
    node.e2e_latency = type(node.e2e_latency)()
    start, n0 = time.perf_counter(), len(received)
    spin_for(ex, args.seconds)
    elapsed = time.perf_counter() - start
    st = node.status()
    row = {
        "name": name,
        "inf_med": st.inference_ms_median,
        "inf_p99": st.inference_ms_p99,
        "e2e_med": 1000 * node.e2e_latency.median(),
        "e2e_p99": 1000 * node.e2e_latency.p99(),
        "rate": (len(received) - n0) / elapsed,
    }
    print(f"{name}: device {policy.device}, holding: {st.hold_reason or 'no'}", flush=True)
    ex.shutdown()
    node.destroy_node()
    probe.destroy_node()
    rclpy.shutdown()
    return row


if __name__ == "__main__":
    main()
