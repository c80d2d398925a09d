"""ROS-free, torch-free control logic of the policy node: the executor (temporal ensembling, rate limiting, the
first-step bound, the floor and the workspace box), the stop trajectory, timing. Robot facts live in
`ccol_policy.robots`, message decoding in `ccol_policy.messages`.

The node (`policy_node.py`) only translates messages into these calls, so everything that decides whether the
robot moves is tested without ROS.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ccol_policy.kinematics import FingertipFloor, tcp_jacobian
from ccol_policy.robots import limits_for, velocity_limits

# The control rate of data that does not carry one: `ccol build-dataset`'s default time grid (`--rate`), which
# episodes without a recorded rate, and checkpoints trained on them, were built on.
DEFAULT_CONTROL_RATE_HZ = 30.0


def control_rate_hz(meta: Mapping[str, Any], default: float = DEFAULT_CONTROL_RATE_HZ) -> float:
    """The control rate (Hz) that travels with a checkpoint (`meta.json`'s control_rate_hz, the training data's
    rate; `Checkpoint.meta`) or an HDF5 episode (its attrs); `default` where it carries none (`ccol replay`: its
    --rate). The one place policy_node, `ccol sim-eval`, `ccol eval-bag` and `ccol replay` read it."""
    rate = meta.get("control_rate_hz")
    return float(rate) if rate else default


@dataclass(frozen=True)
class PlanState:
    """The plan at one grid point: joint position and velocity (7,) and the raw target it was heading for."""

    position: np.ndarray
    velocity: np.ndarray
    target: np.ndarray


# What a first run on an arm uses (policy_node's and `ccol replay --robot`'s defaults): half the joint velocity
# and acceleration limits, and a box (m, the arm's base frame) the hand's TCP stays in; the table is the fingertip
# floor's job.
SAFE_VELOCITY_SCALE = 0.5
SAFE_ACCELERATION_SCALE = 0.5
SAFE_WORKSPACE = ((0.2, -0.45, 0.0), (0.75, 0.45, 0.75))


class ObservationError(ValueError):
    """An observation the policy must not act on; the message names the field."""


def gripper_command(predicted: float, measured: float, squeeze: float = 0.01, max_width: float = 0.08) -> float:
    """The width to command for a predicted width.

    Kinesthetic demonstrations record the *measured* finger width, which stops at the object's size when the hand
    closes on it; commanding exactly that width would hold the object without force. When the policy asks for a
    width at or below the measured one (closing, or holding something), command `squeeze` less so the fingers
    keep pressing; opening commands pass through.
    """
    if predicted <= measured + 0.002 and predicted < max_width - 0.005:
        return max(0.0, predicted - squeeze)
    return min(max(predicted, 0.0), max_width)


class RateLimiter:
    """Joint targets clamped to the joint limits and followed as a double integrator on the control grid: the state
    at a grid point is a position and a velocity, and between grid points the acceleration is constant and within
    the acceleration limits. A cubic Hermite spline through such points (joint_trajectory_controller with positions
    and velocities) reproduces each constant-acceleration segment exactly, so the controller's desired acceleration
    never exceeds the limits. Velocities stay within `velocity_limits` (FR3: libfranka's position-dependent ones;
    every arm: a velocity it can brake from before its joint limits). Each step aims to be on the target's motion
    two grid points ahead (a two-step dead-beat law), and the speed relative to a target is bounded so that braking
    at the acceleration limit still meets it (v^2/2a + v*dt <= distance): a moving target is tracked exactly, a far
    one is reached without overshoot (the idea of libfranka's `limitRate`)."""

    def __init__(
        self, arm_id: str, dt: float, velocity_scale: float = 1.0, acceleration_scale: float = 1.0, margin: float = 0.01
    ) -> None:
        self.arm_id = arm_id
        self.limits = limits_for(arm_id)
        self.dt = dt
        self.velocity_scale = velocity_scale
        self.v_max = self.limits.velocity * velocity_scale
        self.a_max = self.limits.acceleration * acceleration_scale
        self.lower = self.limits.lower + margin
        self.upper = self.limits.upper - margin

    def velocity_bounds(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) joint velocity (7,) allowed at position q: the scaled datasheet limits, the arm's
        position-dependent ones (`robots.velocity_limits`) and the speed from which braking at `a_max` stops
        before the joint limit."""
        low, high = velocity_limits(self.arm_id, q)
        to_upper = np.sqrt(2.0 * self.a_max * np.maximum(self.upper - q, 0.0))
        to_lower = np.sqrt(2.0 * self.a_max * np.maximum(q - self.lower, 0.0))
        return np.maximum(np.maximum(low, -self.v_max), -to_lower), np.minimum(np.minimum(high, self.v_max), to_upper)

    def _brake(self, distance: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """The largest speed towards a target `distance` ahead (moving at `speed` towards it now) to reach at the
        next grid point from which braking at a_max still stops at the target: v^2/2a <= what is left after this
        segment, less a margin for the grid (a*dt^2/2, or half the distance when that is less)."""
        a, h = self.a_max, self.dt
        left = np.maximum(distance - speed * h / 2 - np.minimum(a * h**2 / 2, np.abs(distance) / 2), 0.0)
        return (-a * h + np.sqrt((a * h) ** 2 + 8.0 * a * left)) / 2

    def rollout(self, state: PlanState, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[PlanState]]:
        """From `state` at a grid point, targets (n, 7+) for the next n grid points -> positions (n, 7+) (the
        gripper column clamped, passed through), velocities (n, 7) and the state at each point."""
        out = np.array(targets, np.float64)
        out[:, :7] = np.clip(out[:, :7], self.lower, self.upper)
        if out.shape[1] > 7:
            out[:, 7] = np.clip(out[:, 7], 0.0, self.limits.gripper_max_width)
        h = self.dt
        q, v, prev = state.position.copy(), state.velocity.copy(), state.target.copy()
        velocities = np.zeros((len(out), 7))
        states = []
        goals = out[:, :7].copy()
        for i in range(len(out)):
            g1 = goals[i]
            g2 = goals[i + 1] if i + 1 < len(out) else g1 + (g1 - prev)
            g3 = goals[i + 2] if i + 2 < len(out) else g2 + (g2 - g1)
            v_g1, v_g2 = (g2 - prev) / (2 * h), (g3 - g1) / (2 * h)  # the targets' velocities at g1 and g2
            # two-step dead beat: constant accelerations a, a' that put (q, v) on (g2, v_g2) two points ahead
            a = (g2 - (q + 2 * h * v)) / h**2 - (v_g2 - v) / (2 * h)
            err, rel = g1 - q, v - v_g1
            v_next = np.minimum(np.maximum(v + a * h, v_g1 - self._brake(-err, -rel)), v_g1 + self._brake(err, rel))
            # and never faster than stopping before the farthest target of the horizon allows (anticipates a stop)
            ahead_high, ahead_low = goals[i:].max(axis=0), goals[i:].min(axis=0)
            v_next = np.minimum(np.maximum(v_next, -self._brake(q - ahead_low, -v)), self._brake(ahead_high - q, v))
            low, high = self.velocity_bounds(q)
            v_next = np.minimum(np.maximum(v_next, low), high)
            a = (v_next - v) / h
            a = np.minimum(np.maximum(a, 2 * (self.lower - q - v * h) / h**2), 2 * (self.upper - q - v * h) / h**2)
            a = np.minimum(np.maximum(a, -self.a_max), self.a_max)  # the joint limits, then the acceleration limits
            q = q + v * h + 0.5 * a * h**2
            v = v + a * h
            prev = g1
            out[i, :7] = q
            velocities[i] = v
            states.append(PlanState(q.copy(), v.copy(), g1.copy()))
        return out, velocities, states


class TemporalEnsembler:
    """ACT-style temporal ensembling: the action for step t is a weighted mean of every chunk that covers t.

    Steps are control periods; one chunk per step. Weights are exp(-m * i) with i = 0 for the oldest prediction
    (Zhao et al. 2023), normalised.
    """

    def __init__(self, chunk_size: int, action_dim: int, m: float = 0.01) -> None:
        self.k = chunk_size
        self.m = m
        self._chunks: list[tuple[int, np.ndarray]] = []  # (step the chunk was predicted at, (k, A))
        self.action_dim = action_dim

    def reset(self) -> None:
        self._chunks.clear()

    def add(self, step: int, chunk: np.ndarray) -> None:
        if chunk.shape != (self.k, self.action_dim):
            raise ValueError(f"chunk must be ({self.k}, {self.action_dim}), got {chunk.shape}")
        # one chunk per step (the newest replaces an earlier one of the same step); drop chunks that ended
        self._chunks = [(s, c) for s, c in self._chunks if s + self.k > step and s != step]
        self._chunks.append((step, chunk))

    def action(self, step: int) -> np.ndarray:
        """Blended action for `step` from the chunks covering it (oldest first)."""
        preds = [c[step - s] for s, c in self._chunks if s <= step < s + self.k]
        if not preds:
            raise ValueError(f"no chunk covers step {step}")
        w = np.exp(-self.m * np.arange(len(preds)))
        w /= w.sum()
        return (np.stack(preds) * w[:, None]).sum(0)

    def trajectory(self, step: int, horizon: int) -> np.ndarray:
        """Blended actions for steps step .. step + horizon - 1 (as far as chunks reach): (n, A)."""
        out = []
        for t in range(step, step + horizon):
            if not any(s <= t < s + self.k for s, _ in self._chunks):
                break
            out.append(self.action(t))
        return np.stack(out) if out else np.zeros((0, self.action_dim))


@dataclass(frozen=True)
class Command:
    """What goes to joint_trajectory_controller: points on the control grid at absolute times (the executor's
    clock) with joint positions and velocities (n, 7), the last at rest, and the gripper width to command now (None
    for arm-only policies). A message carries them as `time_from_start = times - now` with header.stamp 0; the
    first point lies at or before now (see `ClosedLoopExecutor`)."""

    times: np.ndarray  # (n,) s
    positions: np.ndarray  # (n, 7)
    velocities: np.ndarray  # (n, 7)
    gripper: float | None = None

    def time_from_start(self, now: float) -> np.ndarray:
        """Seconds from now; the first point never after now (the grid may put it a rounding error ahead)."""
        offsets = self.times - now
        offsets[0] = min(offsets[0], 0.0)
        return offsets


class ClosedLoopExecutor:
    """Predicted chunks -> one continuous plan streamed to the controller, shared by `policy_node`, `ccol sim-eval`
    and `ccol replay`.

    The plan lives on the training control grid (t0 + p * dt): a chunk predicted during period s covers grid points
    s+1 .. s+k; in `ensemble` mode one chunk per period enters the ACT temporal ensemble (the newest predicted in
    that period), in `chunk` mode the newest chunk is executed as it is. The `RateLimiter` turns targets into grid
    states (position, velocity) joined by constant-acceleration segments within the limits.

    Every call, at any node rate, sends the plan from the last grid point at or before `now` (time_from_start <= 0),
    so that joint_trajectory_controller samples its spline between our own points from the first update on and
    never interpolates from its "state before the trajectory" (the measured state on Humble by default, a desired
    state one update off on Jazzy): the stream is one continuous motion on every distro. The points up to the first
    one at least `min_lead` ahead (the message's delivery time) are kept as already sent; the new chunk re-plans the
    segments after it. Each message ends in a braking tail within the acceleration limits, so a stream that stops
    (node stalled, workspace box) brings the arm to rest smoothly.

    With `tcp_floor_z` (m, base frame) targets that would put the hand's TCP lower are raised to it first
    (`FingertipFloor`; `raised` counts them). With `workspace` ((3,) lower, (3,) upper corner, m, base frame) the
    plan ends, braking, before the first point whose TCP (or braking tail) leaves the box, and holds when the next
    target would. Otherwise only gross anomalies hold: a non-finite output or a next target more than `max_jump`
    rad from the measured joints. `stop(now)` is the hold: the plan as sent up to its committed point, then braking
    (never backwards, never from stale measurements). After a hold the plan continues from where the braking
    leaves the arm; once at rest it restarts from the measured joints.
    """

    def __init__(
        self,
        arm_id: str,
        dt: float,
        chunk_size: int,
        action_dim: int,
        mode: str = "ensemble",
        ensemble_m: float = 0.01,
        horizon: int = 10,  # planned points per message, either mode
        max_jump: float = 0.5,
        velocity_scale: float = 1.0,
        acceleration_scale: float = 1.0,
        tcp_floor_z: float | None = None,
        workspace: tuple[np.ndarray, np.ndarray] | None = None,
        min_lead: float = 0.01,
    ) -> None:
        if mode not in ("ensemble", "chunk"):
            raise ValueError(f"execution_mode must be 'ensemble' or 'chunk', got {mode!r}")
        if not 0.0 <= min_lead < dt:
            raise ValueError(f"min_lead ({min_lead} s) must lie in [0, control period {dt} s)")
        self.dt = dt
        self.mode = mode
        self.chunk_size = chunk_size
        self.horizon = min(horizon, chunk_size - 1)  # planned points per message (then the braking tail)
        self.max_jump = max_jump
        self.min_lead = min_lead
        self.ensembler = TemporalEnsembler(chunk_size, action_dim, ensemble_m)
        self.limiter = RateLimiter(arm_id, dt, velocity_scale, acceleration_scale)
        self.floor = FingertipFloor(tcp_floor_z) if tcp_floor_z is not None else None
        self.raised = 0  # targets the floor moved up, since construction
        self.workspace = None if workspace is None else tuple(np.asarray(c, np.float64) for c in workspace)
        self.reset()

    def reset(self) -> None:
        """Forget everything, the plan included (a new episode): the next `step` starts from the measured joints."""
        self.ensembler.reset()
        self._t0: float | None = None  # time of grid point 0
        self._plan: dict[int, PlanState] = {}  # grid point -> planned state, as last sent
        self._chunk: tuple[int, np.ndarray] | None = None  # chunk mode: (period, chunk)

    def restart(self) -> None:
        """Drop the predicted chunks (a hold, a new instruction) but keep the plan the controller is following, so
        that the next `step` continues from where its braking leaves the arm."""
        self.ensembler.reset()
        self._chunk = None

    def period(self, t: float) -> int:
        return int(np.floor((t - self._t0) / self.dt + 1e-9)) if self._t0 is not None else 0

    def _state(self, p: int) -> PlanState:
        """The plan's state at grid point p as sent (at rest at its end once it has run out)."""
        if p in self._plan:
            return self._plan[p]
        end = self._plan[max(self._plan)]
        return PlanState(end.position, np.zeros(7), end.position)

    def _frozen(self, now: float) -> list[int]:
        """Grid points sent and kept: the last one at or before now .. the first one at least min_lead ahead."""
        first = self.period(now)
        committed = int(np.ceil((now + self.min_lead - self._t0) / self.dt - 1e-9))
        return list(range(first, max(committed, first + 1) + 1))

    def moving(self, now: float) -> bool:
        """Whether the plan the controller follows still moves at or after now."""
        if self._t0 is None or not self._plan:
            return False
        return self.period(now) < max(self._plan) or np.abs(self._state(self.period(now)).velocity).max() > 0.0

    def _targets(self, s: int, c: int, chunk: np.ndarray) -> np.ndarray:
        """Targets for grid points c .. c + horizon (the first one only for the gripper): (n, A)."""
        if self.mode == "ensemble":
            self.ensembler.add(s, chunk)
            return self.ensembler.trajectory(c - 1, self.horizon + 1)
        if self._chunk is None or self._chunk[0] != s:
            self._chunk = (s, chunk)
        return self._chunk[1][max(c - 1 - self._chunk[0], 0) :][: self.horizon + 1]

    def step(self, now: float, chunk: np.ndarray, measured: np.ndarray) -> tuple[Command | None, str | None]:
        """now (s, any clock), chunk (k, A) robot units, measured (7 or 8,) -> (the command to send, None), or
        (None, the hold reason): send `stop(now)` then."""
        measured = np.asarray(measured, np.float64)
        if not np.isfinite(chunk).all():
            return None, "policy output contains NaN or inf"
        if not np.isfinite(measured).all():
            return None, "measured joints contain NaN or inf"
        if not self.moving(now):  # (re)start from the measured joints, at rest, now
            self._t0 = now
            self._plan = {0: PlanState(measured[:7].copy(), np.zeros(7), measured[:7].copy())}
        s = self.period(now)
        frozen = self._frozen(now)
        c = frozen[-1]
        targets = self._targets(s, c, chunk)
        if len(targets) < 2:
            return None, f"no predicted target beyond grid point {c} (chunk of {self.chunk_size} exhausted)"
        jump = np.abs(targets[1, :7] - measured[:7])
        if jump.max() > self.max_jump:
            j = int(jump.argmax())
            return None, (
                f"next target of joint {j + 1} is {jump[j]:.3f} rad from the measured position "
                f"(max_jump_rad {self.max_jump})"
            )
        if self.floor is not None:
            targets, n = self.floor.apply(targets)
            self.raised += n
        _, _, states = self.limiter.rollout(self._state(c), targets[1:])
        if self.workspace is not None:
            states = states[: self._inside_workspace(states)]
            if not states:
                x, y, z = tcp_jacobian(targets[1:2, :7])[0][0]
                lower, upper = self.workspace
                return None, (
                    f"next target puts the TCP at ({x:.3f}, {y:.3f}, {z:.3f}) m, outside the workspace box "
                    f"{lower.tolist()}..{upper.tolist()} (workspace_min_xyz/workspace_max_xyz)"
                )
        gripper = (
            float(np.clip(targets[0, 7], 0.0, self.limiter.limits.gripper_max_width)) if targets.shape[1] > 7 else None
        )
        return self._send(frozen, states, gripper), None

    def _inside_workspace(self, states: list[PlanState]) -> int:
        """How many planned points to keep so that they and the braking tail after them stay in the box."""
        lower, upper = self.workspace

        def inside(q: np.ndarray) -> np.ndarray:
            tcp, _ = tcp_jacobian(q)
            return ((tcp >= lower) & (tcp <= upper)).all(axis=1)

        ok = inside(np.array([s.position for s in states]))
        n = int(np.argmin(ok)) if not ok.all() else len(states)
        while n > 0:
            last = states[n - 1]
            tail, _ = stop_trajectory(last.position, last.velocity, self.limiter.a_max, self.dt)
            if inside(tail).all():
                break
            n -= 1
        return n

    def _send(self, frozen: list[int], states: list[PlanState], gripper: float | None) -> Command:
        """The frozen points as sent, the newly planned ones after them and a braking tail to rest, remembered as
        the plan."""
        plan = {p: self._state(p) for p in frozen}
        p = frozen[-1]
        for state in states:
            p += 1
            plan[p] = state
        last = plan[p]
        if np.abs(last.velocity).max() > 0.0:
            tail_q, tail_v = stop_trajectory(last.position, last.velocity, self.limiter.a_max, self.dt)
            for q, v in zip(tail_q, tail_v):
                p += 1
                plan[p] = PlanState(q, v, q)
        self._plan = plan
        points = sorted(plan)
        return Command(
            times=self._t0 + self.dt * np.array(points, np.float64),
            positions=np.array([plan[i].position for i in points]),
            velocities=np.array([plan[i].velocity for i in points]),
            gripper=gripper,
        )

    def stop(self, now: float) -> Command | None:
        """The hold the controller can follow: the plan as sent up to its committed point, then braking at the
        acceleration limits to rest (all joints together); None when nothing was sent or the plan is at rest."""
        self.restart()
        if not self.moving(now):
            return None
        return self._send(self._frozen(now), [], None)


def stop_trajectory(
    position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """Braking that a moving arm can follow: from `position`, `velocity` (7,) every joint decelerates uniformly to
    rest within `acceleration` (7,) rad/s^2, all joints stopping together after n whole periods dt. Returns
    positions and velocities (n, 7) for the points at dt, 2 dt, ... n dt (the last at rest); cubic interpolation
    through them (joint_trajectory_controller with velocities) reproduces the constant deceleration. At rest: one
    point at `position`, one period ahead."""
    q0 = np.asarray(position, np.float64)[:7]
    v0 = np.asarray(velocity, np.float64)[:7]
    brake_time = float(np.max(np.abs(v0) / np.asarray(acceleration, np.float64)[:7]))
    n = max(1, int(np.ceil(brake_time / dt - 1e-9)))
    total = n * dt
    t = dt * np.arange(1, n + 1)[:, None]
    positions = q0 + v0 * t - 0.5 * (v0 / total) * t**2
    velocities = v0 * (1.0 - t / total)
    velocities[-1] = 0.0
    return positions, velocities


class LatencyWindow:
    """Median and p99 over the last `size` samples, in fixed memory."""

    def __init__(self, size: int = 500) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def median(self) -> float:
        return float(np.median(self._values)) if self._values else float("nan")

    def p99(self) -> float:
        return float(np.percentile(self._values, 99)) if self._values else float("nan")
