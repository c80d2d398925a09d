"""ROS-free safety logic of the policy node."""

from __future__ import annotations

import numpy as np
import pytest

from ccol_policy.control import LIMITS, LatencyWindow, SafetyFilter, depth_to_metres, image_to_rgb, limits_for
from ccol_policy.policy import ObservationError

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])


def test_targets_are_clamped_to_joint_and_gripper_limits() -> None:
    f = SafetyFilter("panda", dt=0.05, max_first_step=10.0, velocity_scale=1000.0)
    targets = np.tile(HOME, (3, 1))
    targets[:, 3] = [-2.356, -0.01, 0.5]  # joint 4 upper limit is -0.0698
    targets[:, 7] = [0.04, 0.2, -0.1]
    out, reason = f.filter(targets, HOME)
    assert reason is None
    assert out[1, 3] == pytest.approx(-0.0698 - 0.01) and out[2, 3] == pytest.approx(-0.0698 - 0.01)
    assert out[1, 7] == 0.08 and out[2, 7] == 0.0
    assert targets[1, 3] == -0.01  # input untouched


def test_first_step_and_velocity_bounds_hold() -> None:
    f = SafetyFilter("fr3", dt=0.05, max_first_step=0.1)
    targets = np.tile(HOME, (4, 1))
    targets[0, 1] += 0.2
    _, reason = f.filter(targets, HOME)
    assert reason and "joint 2" in reason and "max_first_step" in reason
    targets = np.tile(HOME, (4, 1))
    targets[2:, 4] += 0.3  # 0.3 rad in 0.05 s = 6 rad/s > 5.26 rad/s
    _, reason = f.filter(targets, HOME)
    assert reason and "joint 5" in reason and "velocity" in reason
    targets[2:, 4] = HOME[4] + 0.2  # 4 rad/s: allowed
    assert f.filter(targets, HOME)[1] is None
    bad = np.tile(HOME, (2, 1))
    bad[1, 0] = np.nan
    assert "NaN" in f.filter(bad, HOME)[1]


def test_limits_by_arm_id() -> None:
    assert limits_for("fr3_left") is LIMITS["fr3"]
    with pytest.raises(ValueError, match="unknown arm_id"):
        limits_for("ur5")


def test_image_conversion() -> None:
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(image_to_rgb("rgb8", 2, 3, 9, rgb.tobytes()), rgb)
    np.testing.assert_array_equal(image_to_rgb("bgr8", 2, 3, 9, rgb[..., ::-1].copy().tobytes()), rgb)
    padded = np.zeros((2, 12), np.uint8)  # row stride larger than width * 3
    padded[:, :9] = rgb.reshape(2, 9)
    np.testing.assert_array_equal(image_to_rgb("rgb8", 2, 3, 12, padded.tobytes()), rgb)
    with pytest.raises(ObservationError, match="unsupported encoding"):
        image_to_rgb("mono8", 2, 3, 3, bytes(6))
    with pytest.raises(ObservationError, match="bytes"):
        image_to_rgb("rgb8", 2, 3, 9, bytes(10))


def test_depth_conversion() -> None:
    mm = np.array([[1000, 250]], np.uint16)
    np.testing.assert_allclose(depth_to_metres("16UC1", 1, 2, 4, mm.tobytes()), [[1.0, 0.25]])
    m = np.array([[0.5, np.nan]], np.float32)
    np.testing.assert_allclose(depth_to_metres("32FC1", 1, 2, 8, m.tobytes()), [[0.5, 0.0]])
    with pytest.raises(ObservationError, match="depth"):
        depth_to_metres("rgb8", 1, 2, 6, bytes(6))


def test_latency_window_is_bounded() -> None:
    w = LatencyWindow(size=10)
    for i in range(100):
        w.add(float(i))
    assert len(w) == 10 and w.median() == pytest.approx(94.5)


def test_gripper_command_keeps_squeezing_a_held_object() -> None:
    from ccol_policy.control import gripper_command

    assert gripper_command(0.08, 0.02) == 0.08  # opening passes through
    assert gripper_command(0.05, 0.08) == pytest.approx(0.04)  # closing: a little more than asked
    assert gripper_command(0.022, 0.022) == pytest.approx(0.012)  # holding a 2.2 cm pen: keep pressing
    assert gripper_command(0.004, 0.0) == pytest.approx(0.004)  # asks to open a little: it opens
