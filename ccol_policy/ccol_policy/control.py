"""ROS-free, torch-free control logic of the policy node: the executor (temporal ensembling, rate limiting, the
first-step bound, the floor and the workspace box), the stop trajectory, timing. Robot facts live in
`ccol_policy.robots`, message decoding in `ccol_policy.messages`.

The node (`policy_node.py`) only translates messages into these calls, so everything that decides whether the
robot moves is tested without ROS.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import numpy as np

from ccol_policy.kinematics import FingertipFloor, tcp_jacobian
from ccol_policy.robots import limits_for

# The control rate of data that does not carry one: `ccol build-dataset`'s default time grid (`--rate`), which
# episodes without a recorded rate, and checkpoints trained on them, were built on.
DEFAULT_CONTROL_RATE_HZ = 30.0


def control_rate_hz(meta: Mapping[str, Any], default: float = DEFAULT_CONTROL_RATE_HZ) -> float:
    """The control rate (Hz) that travels with a checkpoint (`meta.json`'s control_rate_hz, the training data's
    rate; `Checkpoint.meta`) or an HDF5 episode (its attrs); `default` where it carries none (`ccol replay`: its
    --rate). The one place policy_node, `ccol sim-eval`, `ccol eval-bag` and `ccol replay` read it."""
    rate = meta.get("control_rate_hz")
    return float(rate) if rate else default


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
    """Joint targets clamped to the joint limits and approached at most at the velocity and acceleration limits per
    control period (the idea of libfranka's `limitRate`). The speed relative to the target's own motion is bounded
    so that decelerating by a*dt per period still meets it (v^2/2a + v*dt <= distance): a moving target is
    tracked exactly, a far one is reached without overshoot. The state is the last committed target, its
    velocity and the raw target it came from; `seed` restarts from a measured position at rest."""

    def __init__(
        self, arm_id: str, dt: float, velocity_scale: float = 1.0, acceleration_scale: float = 1.0, margin: float = 0.01
    ) -> None:
        self.limits = limits_for(arm_id)
        self.dt = dt
        self.v_max = self.limits.velocity * velocity_scale
        self.a_max = self.limits.acceleration * acceleration_scale
        self.lower = self.limits.lower + margin
        self.upper = self.limits.upper - margin
        self.state: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (position, velocity, raw target)

    def seed(self, measured: np.ndarray) -> None:
        pos = np.clip(np.asarray(measured[:7], np.float64), self.lower, self.upper)
        self.state = (pos, np.zeros(7), pos)

    def rollout(self, targets: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """targets (n, 7+) -> rate-limited copy (n, 7+) and the state after its first point (for `commit`); the
        limiter's own state is not changed."""
        if self.state is None:
            raise RuntimeError("RateLimiter.seed(measured) first")
        out = np.array(targets, np.float64)
        out[:, :7] = np.clip(out[:, :7], self.lower, self.upper)
        if out.shape[1] > 7:
            out[:, 7] = np.clip(out[:, 7], 0.0, self.limits.gripper_max_width)
        pos, vel, prev = (x.copy() for x in self.state)
        first = self.state
        for i in range(len(out)):
            goal = out[i, :7].copy()
            err = goal - pos
            v_goal = (goal - prev) / self.dt
            brake = self.a_max * (np.sqrt(self.dt**2 + 2.0 * np.abs(err) / self.a_max) - self.dt)
            v = np.clip(err / self.dt, v_goal - brake, v_goal + brake)
            v = np.clip(v, -self.v_max, self.v_max)
            v = np.clip(v, vel - self.a_max * self.dt, vel + self.a_max * self.dt)
            pos, vel, prev = pos + v * self.dt, v, goal
            out[i, :7] = pos
            if i == 0:
                first = (pos.copy(), v.copy(), goal)
        return out, first

    def commit(self, state: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.state = state


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


class ClosedLoopExecutor:
    """Predicted chunks -> the joint targets to command, shared by `policy_node`, `ccol sim-eval` and `ccol replay`.

    Time is cut into control periods `dt` (the training control rate), whatever the inference rate: a chunk
    predicted during period s covers periods s+1 .. s+k. In `ensemble` mode one chunk per period enters the
    ACT temporal ensemble (the newest one predicted in that period), so weights go by the chunk's age in periods;
    in `chunk` mode the newest chunk is executed as it is. The result goes through the `RateLimiter`, seeded from
    the measured joints when execution (re)starts. With `tcp_floor_z` (m, base frame) targets that would put the
    hand's TCP lower are raised to it first (`FingertipFloor`; `raised` counts them). With `workspace` ((3,) lower,
    (3,) upper corner, m, base frame) the commanded trajectory ends before the first target whose TCP leaves the
    box, and holds when the first one would. Otherwise only gross anomalies hold: a non-finite output or a first
    target more than `max_jump` rad from the measured joints; after a hold, execution restarts cleanly (ensemble
    emptied, limiter re-seeded from the measured state).
    """

    def __init__(
        self,
        arm_id: str,
        dt: float,
        chunk_size: int,
        action_dim: int,
        mode: str = "ensemble",
        ensemble_m: float = 0.01,
        horizon: int = 10,
        max_jump: float = 0.5,
        velocity_scale: float = 1.0,
        acceleration_scale: float = 1.0,
        tcp_floor_z: float | None = None,
        workspace: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if mode not in ("ensemble", "chunk"):
            raise ValueError(f"execution_mode must be 'ensemble' or 'chunk', got {mode!r}")
        self.dt = dt
        self.mode = mode
        self.horizon = horizon if mode == "ensemble" else chunk_size
        self.max_jump = max_jump
        self.ensembler = TemporalEnsembler(chunk_size, action_dim, ensemble_m)
        self.limiter = RateLimiter(arm_id, dt, velocity_scale, acceleration_scale)
        self.floor = FingertipFloor(tcp_floor_z) if tcp_floor_z is not None else None
        self.raised = 0  # targets the floor moved up, since construction
        self.workspace = None if workspace is None else tuple(np.asarray(c, np.float64) for c in workspace)
        self._t0: float | None = None
        self._period = -1  # control period of the limiter's committed state
        self._pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # limiter state after this period

    def reset(self) -> None:
        """Forget everything: the next `step` starts from the measured state."""
        self.ensembler.reset()
        self._t0 = None
        self._period = -1
        self._pending = None

    def period(self, t: float) -> int:
        return int(np.floor((t - self._t0) / self.dt + 1e-6)) if self._t0 is not None else 0

    def step(self, t: float, chunk: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, str | None]:
        """t (s, any clock), chunk (k, A) robot units, measured (7 or 8,) -> (targets (n, A) for the periods after
        t, spaced by dt; or the measured position (1, A) with the hold reason). A hold resets the executor."""
        measured = np.asarray(measured, np.float64)
        hold = np.asarray(measured[None, : chunk.shape[1]], np.float64)
        if not np.isfinite(chunk).all():
            self.reset()
            return hold, "policy output contains NaN or inf"
        if self._t0 is None:
            self._t0 = t
            self.limiter.seed(measured)
        s = self.period(t)
        if s != self._period:  # a new control period: the previous period's first target becomes the state
            if self._pending is not None:
                self.limiter.commit(self._pending)
            self._period = s
        if self.mode == "ensemble":
            self.ensembler.add(s, chunk)
            targets = self.ensembler.trajectory(s, self.horizon)
        else:
            targets = chunk
        jump = np.abs(targets[0, :7] - measured[:7])
        if jump.max() > self.max_jump:
            j = int(jump.argmax())
            self.reset()
            return hold, (
                f"first target of joint {j + 1} is {jump[j]:.3f} rad from the measured position "
                f"(max_jump_rad {self.max_jump})"
            )
        if self.floor is not None:
            targets, n = self.floor.apply(targets)
            self.raised += n
        out, pending = self.limiter.rollout(targets)
        if self.workspace is not None:
            lower, upper = self.workspace
            tcp, _ = tcp_jacobian(out[:, :7])
            outside = np.flatnonzero(((tcp < lower) | (tcp > upper)).any(axis=1))
            if len(outside) and outside[0] == 0:
                self.reset()
                x, y, z = tcp[0]
                return hold, (
                    f"next target puts the TCP at ({x:.3f}, {y:.3f}, {z:.3f}) m, outside the workspace box "
                    f"{lower.tolist()}..{upper.tolist()} (workspace_min_xyz/workspace_max_xyz)"
                )
            if len(outside):
                out = out[: outside[0]]
        self._pending = pending
        return out, None


def point_velocities(positions: np.ndarray, dt: float, start: np.ndarray) -> np.ndarray:
    """Velocities for trajectory points (n, 7) spaced by dt after `start` (7,): central differences, the last
    point at rest. joint_trajectory_controller then blends with cubic splines instead of velocity-discontinuous
    linear segments, and accepts the trajectory with allow_nonzero_velocity_at_trajectory_end false."""
    padded = np.vstack([start[None, :7], positions[:, :7], positions[-1:, :7]])
    v = (padded[2:] - padded[:-2]) / (2 * dt)
    v[-1] = 0.0
    return v


def stop_trajectory(
    position: np.ndarray, velocity: np.ndarray, acceleration: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray]:
    """A hold that a moving arm can follow: from `position`, `velocity` (7,) every joint decelerates uniformly to
    rest within `acceleration` (7,) rad/s^2, all joints stopping together after n whole periods dt, then the last
    point holds. Returns positions and velocities (n, 7) for the points at dt, 2 dt, ... n dt (the last at rest);
    cubic interpolation through them (joint_trajectory_controller with velocities) reproduces the constant
    deceleration. At rest: one point at `position`, one period ahead (the old hold)."""
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
