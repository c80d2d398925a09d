"""Franka forward kinematics and the executor's fingertip floor."""

from __future__ import annotations

import numpy as np
import pytest

from ccol_policy.control import ClosedLoopExecutor
from ccol_policy.kinematics import FingertipFloor, joint_frames, tcp_jacobian
from ccol_policy.robots import FRANKA_HAND_TCP_TO_TIP_M, tcp_floor

READY = np.array([0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4])
GRASP = np.array([-0.198, 0.283, -0.188, -2.621, 0.197, 2.889, -0.723])  # a sim grasp pose, TCP 5 cm up


def test_tcp_at_the_ready_pose_points_down_in_front_of_the_base() -> None:
    tcp = joint_frames(READY[None])[1][0]
    np.testing.assert_allclose(tcp[:3, 3], [0.307, 0.0, 0.487], atol=1e-3)
    np.testing.assert_allclose(tcp[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-6)  # x forward, z down


def test_jacobian_matches_finite_differences() -> None:
    q = np.vstack([READY, GRASP])
    tip, jac = tcp_jacobian(q)
    eps = 1e-6
    for j in range(7):
        dq = np.zeros(7)
        dq[j] = eps
        moved = joint_frames(q + dq)[1]
        np.testing.assert_allclose((moved[:, :3, 3] - tip) / eps, jac[:, :3, j], atol=1e-5)


def test_floor_raises_low_targets_keeping_xy_and_orientation_and_leaves_the_rest() -> None:
    tcp = joint_frames(GRASP[None])[1][0]
    floor = FingertipFloor(tcp[2, 3] + 0.006)  # the target is 6 mm too low
    targets = np.vstack([np.append(GRASP, 0.0), np.append(READY, 0.08)])
    out, raised = floor.apply(targets)
    assert raised == 1
    new = joint_frames(out[:1, :7])[1][0]
    assert new[2, 3] == pytest.approx(floor.min_z, abs=1e-5)
    np.testing.assert_allclose(new[:2, 3], tcp[:2, 3], atol=1e-4)
    np.testing.assert_allclose(new[:3, :3], tcp[:3, :3], atol=1e-3)
    np.testing.assert_array_equal(out[1], targets[1])  # above the floor: untouched
    assert out[0, 7] == 0.0  # the gripper column is not the floor's business


def test_executor_applies_the_floor_to_every_point_it_returns() -> None:
    low_z = joint_frames(GRASP[None])[1][0][2, 3]
    table_z = low_z - FRANKA_HAND_TCP_TO_TIP_M - 0.004 + 0.01  # this table puts the floor 1 cm above GRASP's TCP
    z_floor = tcp_floor(table_z)
    ex = ClosedLoopExecutor("panda", 1 / 30, 5, 8, mode="chunk", tcp_floor_z=z_floor)
    q = np.append(GRASP, 0.08)
    chunk = np.tile(q, (5, 1))
    command, reason = ex.step(0.0, chunk, q)
    assert reason is None and ex.raised == 5
    # the limiter then moves toward the raised targets from the measured pose: up, never lower
    z = joint_frames(command.positions)[1][:, 2, 3]
    assert z.min() > low_z - 5e-4 and z[-1] > low_z + 0.002 and z.max() < low_z + 0.01 + 1e-3
    with pytest.raises(ValueError, match="finite"):
        tcp_floor(float("nan"))
