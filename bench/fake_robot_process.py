"""A fake Franka + D435i in their own process (bench_policy_node.py, node tests): the driver's names, joints at
1 kHz, 640x480 rgb8 at 30 Hz; faults on /fake_robot/fault (std_msgs/String)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import rclpy
from ros_harness import FakeRobot


def main() -> None:
    rclpy.init()
    q = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    node = FakeRobot(sys.argv[1] if len(sys.argv) > 1 else "fr3", q, image)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
