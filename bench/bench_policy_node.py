"""End-to-end latency of policy_node over DDS: camera image stamp -> trajectory published, and the achieved rate.

    .venv/bin/python bench/bench_policy_node.py --checkpoint runs/demo/train_ccol/best --rate 67 --seconds 10

A fake Franka (joint states at 100 Hz) and a fake D435i (640x480 rgb8 at 30 Hz) publish with current stamps
from another process;
the node runs at --rate. Prints the node's inference latency, stamp-to-publish latency (median / p99) and the
achieved command rate against the requested one (the ratio is the figure).
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--rate", type=float, default=67.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    robot_proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_robot_process.py")), "fr3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run(args)
    finally:
        robot_proc.terminate()
        robot_proc.wait(5)


def run(args: argparse.Namespace) -> None:
    rclpy.init()
    policy = CCoLPolicy.from_checkpoint(args.checkpoint, device=args.device, half=True)
    probe = rclpy.create_node("bench_probe")
    node = PolicyNode(
        policy,
        {
            "arm_id": "fr3",
            "instruction": policy.ckpt.instructions[0],
            "rate_hz": args.rate,
            "execution_mode": "ensemble",
            "start_enabled": True,
            "gripper_mode": "topic",
        },
    )
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
    rate = (len(received) - n0) / elapsed
    st = node.status().key_values()
    print(f"device {policy.device}, requested {args.rate:.0f} Hz, checkpoint {args.checkpoint}")
    print(f"inference ms median {st['inference_ms_median']}, p99 {st['inference_ms_p99']}")
    print(
        f"image stamp -> trajectory publish ms median {1000 * node.e2e_latency.median():.2f}, "
        f"p99 {1000 * node.e2e_latency.p99():.2f}"
    )
    print(
        f"achieved {rate:.1f} Hz received by the controller topic; ratio achieved/requested {rate / args.rate:.2f}; "
        f"holding: {st['hold_reason'] or 'no'}"
    )
    ex.shutdown()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
