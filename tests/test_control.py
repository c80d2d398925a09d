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
    PlanState,
    RateLimiter,
    control_rate_hz,
    stop_trajectory,
)
from ccol_policy.gripper import FrankaGripper, grasp_succeeds
from ccol_policy.jtc import JTCFollower, StartState
from ccol_policy.kinematics import tcp_jacobian
from ccol_policy.messages import depth_to_metres, image_to_rgb
from ccol_policy.robots import LIMITS, limits_for, velocity_limits

from conftest import cubic_accelerations

HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])


def _state(q: np.ndarray) -> PlanState:
    return PlanState(np.asarray(q[:7], float), np.zeros(7), np.asarray(q[:7], float))


def test_targets_are_clamped_to_joint_and_gripper_limits() -> None:
    f = RateLimiter("panda", dt=0.05)
    start = HOME.copy()
    start[3] = -0.1  # joint 4 upper limit is -0.0698
    targets = np.tile(start, (3, 1))
    targets[:, 3] = [-0.01, 0.5, 0.5]
    targets[:, 7] = [0.04, 0.2, -0.1]
    state = _state(start)
    for _ in range(20):
        out, _, states = f.rollout(state, targets)
        assert out[:, 3].max() <= -0.0698 - 0.01 + 1e-12
        state = states[0]
    assert out[0, 3] == pytest.approx(-0.0698 - 0.01, abs=1e-4)
    assert out[1, 7] == 0.08 and out[2, 7] == 0.0
    assert targets[1, 3] == 0.5  # input untouched


def test_rate_limiter_moves_toward_far_targets_within_velocity_and_acceleration_limits() -> None:
    dt = 1 / 30
    f = RateLimiter("fr3", dt=dt)
    goal = HOME.copy()
    goal[1] += 0.4  # a step of 0.4 rad: executed as a smooth ramp, not a jump and not a freeze
    state, path, speed = _state(HOME), [HOME[:7]], [np.zeros(7)]
    for _ in range(40):
        _, _, states = f.rollout(state, goal[None])
        state = states[0]
        path.append(state.position)
        speed.append(state.velocity)
    path, speed = np.array(path), np.array(speed)
    accel = np.diff(speed, axis=0) / dt  # constant between grid points
    assert np.abs(speed).max(0)[1] <= 2.62 and np.abs(accel).max(0)[1] <= 10.0 + 1e-9
    np.testing.assert_allclose(np.diff(path, axis=0), dt * (speed[:-1] + speed[1:]) / 2, atol=1e-12)
    assert path[1, 1] - HOME[1] > 0.001  # moves in the first period
    assert path[-1, 1] == pytest.approx(goal[1], abs=1e-3)  # arrives ...
    assert path[:, 1].max() <= goal[1] + 2e-3  # ... without overshoot
    np.testing.assert_allclose(path[:, [0, 2, 3, 4, 5, 6]], np.tile(HOME[[0, 2, 3, 4, 5, 6]], (41, 1)))


def test_fr3_velocity_limits_depend_on_position_and_bind_the_limiter() -> None:
    low, high = velocity_limits("fr3", HOME)
    np.testing.assert_allclose(high[[0, 2, 4, 6]], [2.619, 2.619, 5.259, 5.259])
    near = HOME.copy()
    near[0] = 2.6  # 0.15 rad below joint 1's limit: libfranka allows -0.30 + sqrt(12 * 0.1501) = 1.04 rad/s up
    assert velocity_limits("fr3", near)[1][0] == pytest.approx(-0.30 + np.sqrt(12 * 0.1501) - 1e-3)
    assert velocity_limits("fr3", near)[0][0] == pytest.approx(-2.619)
    np.testing.assert_array_equal(velocity_limits("panda", near)[1], LIMITS["panda"].velocity)
    f = RateLimiter("fr3", dt=1 / 30)
    goal = near.copy()
    goal[0] = 2.74  # towards the limit, from speed
    state = PlanState(near[:7] - np.array([0.3, 0, 0, 0, 0, 0, 0]), np.array([2.5, 0, 0, 0, 0, 0, 0]), near[:7])
    for _ in range(60):
        _, _, states = f.rollout(state, goal[None])
        low, high = velocity_limits("fr3", state.position)
        assert low[0] - 1e-9 <= states[0].velocity[0] <= max(high[0], state.velocity[0] - 10.0 / 30) + 1e-9
        state = states[0]
    assert state.position[0] <= LIMITS["fr3"].upper[0] - 0.01 + 1e-9


def stream(
    ex: ClosedLoopExecutor,
    chunks,
    node_rate: float,
    seconds: float,
    start: StartState = StartState.DESIRED,
    delay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The executor at `node_rate`, its messages followed by a 1 kHz JTC model delivered `delay` s late, a perfect
    tracker: (t, desired positions, desired accelerations)."""
    q = HOME.copy()
    v = np.zeros(7)
    follower = JTCFollower(HOME[:7], start)
    out, t, next_cycle, inbox = [], 0.0, 0.0, []
    for tick in range(int(seconds * 1000)):
        t = tick / 1000
        if t >= next_cycle - 1e-12:
            command, reason = ex.step(t, chunks(t), q)
            if reason is not None:
                command = ex.stop(t)
            if command is not None:
                inbox.append((t + delay, command.time_from_start(t + delay), command.positions, command.velocities))
            next_cycle += 1.0 / node_rate
        while inbox and inbox[0][0] <= t + 1e-12:
            follower.receive(*inbox.pop(0)[1:])
        qd, vd, ad = follower.update(t, (q[:7], v))
        q, v = np.append(qd, HOME[7]), vd
        out.append((t, qd, ad))
    return np.array([o[0] for o in out]), np.array([o[1] for o in out]), np.array([o[2] for o in out])


def moving_plan(t: float, k: int = 30, dt: float = 1 / 30) -> np.ndarray:
    """A chunk predicted at t: the same smooth motion of joints 1 and 2 (up to 0.5 rad/s) at every call."""
    s = np.floor(t / dt + 1e-9)
    times = (s + 1 + np.arange(k)) * dt
    chunk = np.tile(HOME, (k, 1))
    chunk[:, 1] += 0.4 * np.sin(1.2 * times)
    chunk[:, 0] += 0.3 * (1 - np.cos(0.9 * times))
    return chunk


@pytest.mark.parametrize("start", list(StartState))
def test_the_same_plan_streamed_at_30_67_100_hz_is_followed_the_same(start: StartState) -> None:
    """One continuous plan whatever the node's rate and whatever state the controller starts a message from."""
    runs = {}
    for rate in (30.0, 67.0, 100.0):
        ex = ClosedLoopExecutor("fr3", 1 / 30, 30, 8, velocity_scale=0.5, acceleration_scale=0.5)
        runs[rate] = stream(ex, moving_plan, rate, 3.0, start, delay=0.0007)
    _, ref, _ = runs[30.0]
    tcp_ref = tcp_jacobian(ref[::10])[0]
    for rate, (_, q, accel) in runs.items():
        assert np.abs(tcp_jacobian(q[::10])[0] - tcp_ref).max() < 1e-3  # within 1 mm of the hand
        limit = LIMITS["fr3"].acceleration * 0.5
        assert (np.abs(accel).max(0) <= limit + 1e-6).all(), (rate, np.abs(accel).max(0))
    assert np.abs(runs[67.0][1][-1] - HOME[:7]).max() > 0.2  # it did move


def test_restarting_each_message_from_the_measured_state_was_what_hurt() -> None:
    """The old stream (first point one period after receipt, velocities from the measured joints) through the same
    JTC model demanded accelerations far beyond the limits; the continuous stream stays within them."""
    dt, follower, q = 1 / 30, JTCFollower(HOME[:7], StartState.MEASURED), HOME[:7].copy()
    v, peak = np.zeros(7), np.zeros(7)
    for tick in range(2000):
        t = tick / 1000
        if tick % 15 == 0:  # ~67 Hz, each message restarting: points at (i + 1) dt after receipt
            chunk = moving_plan(t)[:10, :7]
            velocities = np.gradient(chunk, dt, axis=0)
            velocities[-1] = 0.0  # the old stream's last point at rest
            assert follower.receive(dt * np.arange(1, 11), chunk, velocities) is None
        qd, vd, ad = follower.update(t, (q, v))
        q, v = qd, vd
        peak = np.maximum(peak, np.abs(ad)) if tick > 100 else peak
    assert peak.max() > 3 * LIMITS["fr3"].acceleration.max()


def test_stream_ends_in_a_braking_tail_and_a_stalled_node_stops_the_arm_within_the_limits() -> None:
    ex = ClosedLoopExecutor("fr3", 1 / 30, 30, 8, velocity_scale=0.5, acceleration_scale=0.5)
    t, q, accel = stream(ex, lambda t: moving_plan(t) if t < 1.0 else np.full((30, 8), np.nan), 67.0, 2.5)
    command, _ = ClosedLoopExecutor("fr3", 1 / 30, 30, 8).step(0.5, moving_plan(0.5), HOME)
    assert (command.velocities[-1] == 0).all() and (command.time_from_start(0.5)[0] <= 0)
    limit = LIMITS["fr3"].acceleration * 0.5
    assert (np.abs(accel).max(0) <= limit + 1e-6).all()
    speed = np.abs(np.diff(q, axis=0)).max(1) * 1000
    assert speed[(t[1:] > 0.9) & (t[1:] < 1.0)].max() > 0.05  # moving when the NaN outputs start
    assert speed[t[1:] > 1.4].max() < 1e-9  # then braked to rest, never backwards:
    direction = np.sign(q[1000] - q[980])
    assert (np.diff(q[1000:], axis=0) * direction >= -1e-12).all()


def test_executor_starts_smoothly_when_the_first_target_is_far() -> None:
    ex = ClosedLoopExecutor("fr3", 1 / 30, 5, 8, horizon=3)
    chunk = np.tile(HOME, (5, 1))
    chunk[:, 1] += 0.2  # 0.2 rad away: the old first-step filter froze here forever
    _, q, accel = stream(ex, lambda t: chunk, 30.0, 2.0)
    assert q[-1, 1] == pytest.approx(HOME[1] + 0.2, abs=1e-3)
    assert np.abs(accel).max() <= 10.0 + 1e-6


def test_executor_ensembles_one_chunk_per_control_period() -> None:
    ex = ClosedLoopExecutor("fr3", 0.1, 3, 8, ensemble_m=0.0, horizon=1)
    a, b = np.tile(HOME, (3, 1)), np.tile(HOME, (3, 1))
    b[:, 0] += 0.02
    ex.step(0.0, a, HOME)
    for t in (0.01, 0.03, 0.05):  # several inference cycles inside the first period: the newest chunk replaces
        ex.step(t, b, HOME)
    assert len(ex.ensembler._chunks) == 1
    ex.step(0.1, b, HOME)  # period 1: chunk b of period 0 and chunk b of period 1, equal weights
    assert len(ex.ensembler._chunks) == 2


def test_executor_holds_on_gross_jumps_and_nan_then_restarts_from_the_measured_state() -> None:
    ex = ClosedLoopExecutor("fr3", 1 / 30, 5, 8, horizon=3, max_jump=0.5)
    far = np.tile(HOME, (5, 1))
    far[:, 2] += 0.8
    command, reason = ex.step(0.0, far, HOME)
    assert command is None and "joint 3" in reason and "max_jump_rad" in reason
    assert ex.stop(0.0) is None  # nothing was sent: nothing to stop
    bad = np.tile(HOME, (5, 1))
    bad[2, 0] = np.nan
    assert "NaN" in ex.step(0.1, bad, HOME)[1]
    q = HOME + 0.01
    command, reason = ex.step(0.2, np.tile(q, (5, 1)), q)
    assert reason is None and np.abs(command.positions[0] - q[:7]).max() < 1e-9  # at the measured joints


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


def test_workspace_box_ends_trajectories_braking_inside_it_and_holds_outside() -> None:
    home_tcp = tcp_jacobian(HOME[None, :7])[0][0]
    box = (home_tcp - 0.05, home_tcp + 0.05)
    ex = ClosedLoopExecutor("panda", 0.05, 8, 8, mode="chunk", workspace=box)
    chunk = np.tile(HOME, (8, 1))
    chunk[:, 0] += np.linspace(0.05, 0.8, 8)  # base yaw: the TCP swings sideways out of the box
    command, reason = ex.step(0.0, chunk, HOME)
    assert reason is None and (command.velocities[-1] == 0).all()
    tcp = tcp_jacobian(command.positions)[0]
    assert ((tcp >= box[0]) & (tcp <= box[1])).all()  # the braking tail included
    far = ClosedLoopExecutor("panda", 0.05, 5, 8, mode="chunk", workspace=(home_tcp + 0.1, home_tcp + 0.2))
    command, reason = far.step(0.0, chunk[:5], HOME)
    assert command is None and "outside the workspace box" in reason


def test_control_rate_comes_with_the_checkpoint_or_the_one_fallback() -> None:
    assert control_rate_hz({"control_rate_hz": 20.0, "step": 30}) == 20.0
    assert control_rate_hz({}) == control_rate_hz({"control_rate_hz": None}) == DEFAULT_CONTROL_RATE_HZ == 30.0
    assert control_rate_hz({}, default=15.0) == 15.0  # ccol replay: its --rate for episodes that carry none


def test_jtc_model_validates_messages_as_joint_trajectory_controller_does() -> None:
    follower = JTCFollower(HOME[:7])
    q = np.tile(HOME[:7], (2, 1))
    assert follower.receive(np.array([-0.01, 0.02]), q, np.zeros((2, 7))) is None  # a first point in the past: ok
    assert follower.receive(np.zeros(0), np.zeros((0, 7))) == "Empty trajectory received."
    assert "strictly increasing" in follower.receive(np.array([0.02, 0.02]), q, np.zeros((2, 7)))
    moving = np.zeros((2, 7))
    moving[-1, 0] = 0.1
    assert "not zero" in follower.receive(np.array([0.01, 0.02]), q, moving)  # Jazzy's default and our configs
    assert follower.rejected == 3
