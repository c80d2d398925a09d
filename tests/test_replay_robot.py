"""`ccol replay --robot`: the first motion a user makes on an arm, with policy_node's safe defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ccol_policy.control import SAFE_WORKSPACE
from ccol_policy.data import write_episode
from ccol_policy.replay_node import replay_executor, robot_of
from ccol_policy.robots import LIMITS

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])


def test_the_robot_is_the_episodes_own_unless_named() -> None:
    labels = np.zeros((3, 8))
    assert robot_of([("a", labels, 30.0, "fr3"), ("b", labels, 30.0, None)], None) == "fr3"
    assert robot_of([("a", labels, 30.0, "panda")], None) == "panda"
    assert robot_of([("a", labels, 30.0, None)], None) == "fr3"  # nothing recorded: the FR3, everything's default
    assert robot_of([("a", labels, 30.0, "fr3")], "fr3") == "fr3"
    with pytest.raises(ValueError, match="recorded on \\['panda'\\]"):
        robot_of([("a", labels, 30.0, "panda")], "fr3")
    with pytest.raises(ValueError, match="several arms"):
        robot_of([("a", labels, 30.0, "panda"), ("b", labels, 30.0, "fr3")], None)


def test_replay_uses_policy_node_safe_defaults() -> None:
    ex = replay_executor("fr3", 1 / 30, 10, 8, "chunk", table_z=0.0)
    np.testing.assert_allclose(ex.limiter.v_max, 0.5 * LIMITS["fr3"].velocity)
    np.testing.assert_allclose(ex.limiter.a_max, 0.5 * LIMITS["fr3"].acceleration)
    np.testing.assert_allclose(np.array(ex.workspace), np.array(SAFE_WORKSPACE))
    assert ex.floor is not None
    from ccol_policy.policy_node import PARAMETERS  # one source: the node's defaults are the same numbers

    assert PARAMETERS["velocity_scale"].default == PARAMETERS["acceleration_scale"].default == 0.5
    assert (PARAMETERS["workspace_min_xyz"].default, PARAMETERS["workspace_max_xyz"].default) == tuple(
        list(c) for c in SAFE_WORKSPACE
    )


def test_replay_on_a_fake_fr3_streams_positions_and_velocities_on_the_grid(tmp_path: Path) -> None:
    """An FR3 episode replayed (dry run) against a fake FR3: the robot comes from the episode, and every message
    is the continuous stream policy_node sends (velocities, grid timing, first point at or before now)."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")
    from rclpy.executors import SingleThreadedExecutor
    from ros_harness import FakeRobot, jtc_rejection, spin_until
    from trajectory_msgs.msg import JointTrajectory

    steps = 45
    action = np.tile(HOME, (steps, 1))
    action[:, 0] += np.linspace(0.0, 0.15, steps)  # base yaw: 0.15 rad in 1.5 s, the TCP stays in the box
    images = {"color": np.zeros((steps, 8, 8, 3), np.uint8)}
    episode = write_episode(
        tmp_path / "episode_0000.hdf5", action, action, images, "lift the pen", arm_id="fr3", control_rate_hz=30.0
    )
    rclpy.init()
    robot = FakeRobot("fr3", HOME, np.zeros((8, 8, 3), np.uint8))
    trajs = robot.listen(JointTrajectory, "/ccol_replay/dry_run_trajectory")
    ex = SingleThreadedExecutor()
    ex.add_node(robot)
    cmd = [sys.executable, "-m", "ccol_policy.cli", "replay", str(episode), "--robot", "--chunk", "10"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        assert spin_until(ex, lambda: proc.poll() is not None, 90.0)
        log = proc.stderr.read()
        assert proc.returncode == 0, log[-2000:]
        assert "dry run: 1 episode(s) of fr3" in log and "0.5/0.5 of the limits" in log
        assert len(trajs) >= 20, len(trajs)
        for msg in trajs:
            assert jtc_rejection(msg) is None and msg.joint_names[0] == "fr3_joint1"
            times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
            assert times[0] <= 0 < times[1] and np.diff(times) == pytest.approx(1 / 30, abs=1e-6)
            assert all(len(p.velocities) == 7 for p in msg.points)
        last = np.array(trajs[-1].points[-1].positions)
        assert last[0] == pytest.approx(HOME[0] + 0.15, abs=0.01)  # replayed to the episode's end
    finally:
        if proc.poll() is None:
            proc.kill()
        ex.shutdown()
        robot.destroy_node()
        rclpy.shutdown()
