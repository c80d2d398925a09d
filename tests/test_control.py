"""ROS-free control logic of the policy node, sim-eval and replay."""

from __future__ import annotations

import numpy as np
import pytest
from fake_gripper import FakeGraspServer, close_on

from ccol_policy.control import (
    DEFAULT_CONTROL_RATE_HZ,
    ClosedLoopExecutor,
    LatencyWindow,
    ObservationError,
    RateLimiter,
    control_rate_hz,
    stop_trajectory,
)
from ccol_policy.gripper import FrankaGripper, grasp_succeeds
from ccol_policy.messages import depth_to_metres, image_to_rgb
from ccol_policy.robots import LIMITS, limits_for

from conftest import cubic_accelerations

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])


def test_targets_are_clamped_to_joint_and_gripper_limits() -> None:
    f = RateLimiter("panda", dt=0.05)
    start = HOME.copy()
    start[3] = -0.1  # joint 4 upper limit is -0.0698
    f.seed(start)
    targets = np.tile(start, (3, 1))
    targets[:, 3] = [-0.01, 0.5, 0.5]
    targets[:, 7] = [0.04, 0.2, -0.1]
    for _ in range(20):
        out, state = f.rollout(targets)
        assert out[:, 3].max() <= -0.0698 - 0.01 + 1e-12
        f.commit(state)
    assert out[0, 3] == pytest.approx(-0.0698 - 0.01)
    assert out[1, 7] == 0.08 and out[2, 7] == 0.0
    assert targets[1, 3] == 0.5  # input untouched


def test_rate_limiter_moves_toward_far_targets_within_velocity_and_acceleration_limits() -> None:
    dt = 1 / 30
    f = RateLimiter("fr3", dt=dt)
    f.seed(HOME)
    goal = HOME.copy()
    goal[1] += 0.2  # a step of 0.2 rad: executed as a smooth ramp, not a jump and not a freeze
    path = [HOME[:7]]
    for _ in range(30):
        out, state = f.rollout(goal[None])
        f.commit(state)
        path.append(out[0, :7])
    path = np.array(path)
    v = np.diff(path, axis=0) / dt
    a = np.diff(v, axis=0) / dt
    assert np.abs(v).max(0)[1] <= 2.62 + 1e-9 and np.abs(a).max(0)[1] <= 10.0 + 1e-6
    assert path[1, 1] - HOME[1] > 0.001  # moves in the first period
    assert path[-1, 1] == pytest.approx(goal[1], abs=1e-3)  # arrives ...
    assert path[:, 1].max() <= goal[1] + 1e-3  # ... without overshoot
    np.testing.assert_allclose(path[:, [0, 2, 3, 4, 5, 6]], np.tile(HOME[[0, 2, 3, 4, 5, 6]], (31, 1)))


def _executor(mode: str = "ensemble", k: int = 5, **kw: float) -> ClosedLoopExecutor:
    return ClosedLoopExecutor("fr3", 1 / 30, k, 8, mode=mode, horizon=3, **kw)


@pytest.mark.parametrize("mode", ["ensemble", "chunk"])
def test_executor_starts_smoothly_when_the_first_target_is_far(mode: str) -> None:
    ex = _executor(mode)
    chunk = np.tile(HOME, (5, 1))
    chunk[:, 1] += 0.2  # 0.2 rad away: the old first-step filter froze here forever
    q = HOME.copy()
    for step in range(60):
        targets, reason = ex.step(step / 30, chunk, q)
        assert reason is None
        q = np.append(targets[0, :7], HOME[7])  # a perfect controller
    assert q[1] == pytest.approx(HOME[1] + 0.2, abs=1e-3)


def test_executor_ensembles_one_chunk_per_control_period() -> None:
    ex = ClosedLoopExecutor("fr3", 0.1, 3, 8, ensemble_m=0.0, horizon=1)
    a, b = np.tile(HOME, (3, 1)), np.tile(HOME, (3, 1))
    b[:, 0] += 0.02
    ex.step(0.0, a, HOME)
    for t in (0.01, 0.03, 0.05):  # several inference cycles inside the first period: the newest chunk replaces
        ex.step(t, b, HOME)
    assert len(ex.ensembler._chunks) == 1
    out, _ = ex.step(0.1, b, HOME)  # period 1: chunk b of period 0 and chunk b of period 1, equal weights
    assert len(ex.ensembler._chunks) == 2


def test_executor_holds_on_gross_jumps_and_nan_then_restarts_from_the_measured_state() -> None:
    ex = _executor(max_jump=0.5)
    far = np.tile(HOME, (5, 1))
    far[:, 2] += 0.8
    hold, reason = ex.step(0.0, far, HOME)
    assert "joint 3" in reason and "max_jump_rad" in reason
    np.testing.assert_allclose(hold[0], HOME)  # hold = the measured position
    bad = np.tile(HOME, (5, 1))
    bad[2, 0] = np.nan
    assert "NaN" in ex.step(0.1, bad, HOME)[1]
    q = HOME + 0.01
    out, reason = ex.step(0.2, np.tile(q, (5, 1)), q)
    assert reason is None and np.abs(out[0, :7] - q[:7]).max() < 1e-9  # re-seeded at the measured joints


def test_limits_by_arm_id() -> None:
    assert limits_for("left_fr3") is LIMITS["fr3"]
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


@pytest.mark.parametrize("object_width", [0.02, 0.04, 0.06])
def test_policy_close_is_a_grasp_franka_gripper_reports_succeeded(object_width: float) -> None:
    server = FakeGraspServer(object_width)
    gripper = FrankaGripper(None, backend=server)
    close_on(gripper, server, object_width)
    assert [r[0] for r in server.results] == ["grasp"]  # one goal on the transition, not one per cycle
    assert server.results[0][1:] == ("succeeded", object_width, True)
    assert gripper.command(0.08, server.width) == "move" and server.width == 0.08  # the policy opens: released


def test_grasp_epsilon_rule_and_windows_that_miss_objects() -> None:
    # libfranka: success iff width - inner <= final <= width + outer
    assert grasp_succeeds(0.0, 0.005, 0.08, 0.02) and not grasp_succeeds(0.07, 0.005, 0.08, 0.02)
    # the old goal: the first predicted width below the measured one (about 0.07 m) aborts on a 4 cm object
    server = FakeGraspServer(0.04)
    server.grasp(0.07, 0.005, 0.08, speed=0.1, force=40.0)
    assert server.results == [("grasp", "aborted", 0.04, False)]
    # a configuration whose window cannot hold every object the hand spans is refused up front
    with pytest.raises(ValueError, match="gripper_epsilon_outer_m >= 0.08"):
        FrankaGripper(None, epsilon_outer=0.02, backend=server)
    with pytest.raises(ValueError, match="not 0..0.08"):
        FrankaGripper(None, grasp_width=0.07, backend=server)


@pytest.mark.parametrize("acceleration_scale", [1.0, 0.3])
def test_stop_from_max_joint_speed_brakes_within_the_acceleration_limit(acceleration_scale: float) -> None:
    lim, dt = LIMITS["fr3"], 1 / 30
    a_max = lim.acceleration * acceleration_scale
    v0 = lim.velocity * np.array([1, -1, 1, -1, 1, -1, 1])
    pos, vel = stop_trajectory(HOME[:7], v0, a_max, dt)
    demanded = cubic_accelerations(HOME[:7], v0, dt, pos, vel)
    assert (demanded <= a_max * (1 + 1e-9)).all(), demanded / a_max
    assert (vel[-1] == 0).all() and len(pos) == int(np.ceil((lim.velocity / a_max).max() / dt - 1e-9))
    # the old hold (one point at the start position, at rest, one period ahead) demanded far more
    old = cubic_accelerations(HOME[:7], v0, dt, HOME[None, :7], np.zeros((1, 7)))
    assert old.min() > 10 * a_max.max()
    # at rest the stop is the old one-point hold
    pos, vel = stop_trajectory(HOME[:7], np.zeros(7), a_max, dt)
    assert pos.shape == (1, 7) and np.allclose(pos[0], HOME[:7]) and (vel == 0).all()


def test_workspace_box_ends_trajectories_at_its_edge_and_holds_outside() -> None:
    from ccol_policy.kinematics import tcp_jacobian

    home_tcp = tcp_jacobian(HOME[None, :7])[0][0]
    box = (home_tcp - 0.05, home_tcp + 0.05)
    ex = ClosedLoopExecutor("panda", 0.05, 5, 8, mode="chunk", workspace=box)
    chunk = np.tile(HOME, (5, 1))
    chunk[:, 0] += np.linspace(0.05, 0.5, 5)  # base yaw: the TCP swings sideways out of the box
    out, reason = ex.step(0.0, chunk, HOME)
    assert reason is None and 0 < len(out) < 5
    tcp = tcp_jacobian(out[:, :7])[0]
    assert ((tcp >= box[0]) & (tcp <= box[1])).all()
    far = ClosedLoopExecutor("panda", 0.05, 5, 8, mode="chunk", workspace=(home_tcp + 0.1, home_tcp + 0.2))
    out, reason = far.step(0.0, chunk, HOME)
    assert "outside the workspace box" in reason and np.allclose(out, HOME[None])


def test_control_rate_comes_with_the_checkpoint_or_the_one_fallback() -> None:
    assert control_rate_hz({"control_rate_hz": 20.0, "step": 30}) == 20.0
    assert control_rate_hz({}) == control_rate_hz({"control_rate_hz": None}) == DEFAULT_CONTROL_RATE_HZ == 30.0
    assert control_rate_hz({}, default=15.0) == 15.0  # ccol replay: its --rate for episodes that carry none
