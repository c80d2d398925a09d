"""joint_trajectory_controller (ros2_controllers) as a ROS-free model: how it turns a stream of JointTrajectory
messages into the desired joint state it commands every update. Its source is the spec (humble 2.x, jazzy 4.x,
`joint_trajectory_controller.cpp` `update()` and `trajectory.cpp` `Trajectory::sample()`):

- A message replaces the running trajectory at the controller's next update. With header.stamp 0 the trajectory's
  start time is that update's time (`Trajectory::sample`: a zero start time becomes the first sample time).
- At that first sample the controller stores the "state before the trajectory" and interpolates from it to the
  first point at start + its time_from_start: `StartState.DESIRED` (jazzy `interpolate_from_desired_state: true`:
  the last commanded state at the last update's time), `StartState.LAST_COMMANDED` (humble
  `open_loop_control: true`: the last commanded state, stamped with this update's time) or `StartState.MEASURED`
  (both distros' default: the measured state now).
- Between two states: cubic Hermite when both carry velocities, linear when either has positions only (our points
  never carry accelerations, so quintic segments do not occur). After the last point its position is held at rest.
- A message `validate_trajectory` refuses (empty, times not increasing, a last point not at rest) is rejected and
  the running trajectory goes on.

`JTCFollower` keeps the desired state a perfect tracker would follow; `sim_node`, `ccol sim-eval` and the stream
bench drive the simulated arm with it, and the tests measure the accelerations a stream demands through it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class StartState(enum.Enum):
    DESIRED = "desired"  # jazzy, interpolate_from_desired_state: true (ccol_bringup's controllers_fr3.yaml)
    LAST_COMMANDED = "last_commanded"  # humble, open_loop_control: true (ccol_bringup's Humble controllers)
    MEASURED = "measured"  # the default of both distros


@dataclass
class _Trajectory:
    start: float | None  # absolute start time; None: header.stamp 0, set at the first sample
    offsets: np.ndarray  # (n,) time_from_start of each point (s)
    positions: np.ndarray  # (n, J)
    velocities: np.ndarray | None  # (n, J), or None for position-only points
    before: tuple[float, np.ndarray, np.ndarray] | None = None  # (time, position, velocity) set at the first sample
    times: np.ndarray | None = None  # (n,) absolute point times, set at the first sample


def hermite(
    t0: float, q0: np.ndarray, v0: np.ndarray, t1: float, q1: np.ndarray, v1: np.ndarray, t: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cubic Hermite segment from (q0, v0) at t0 to (q1, v1) at t1, sampled at t: position, velocity, acceleration
    (ros2_controllers `interpolate_between_points` with positions and velocities)."""
    h = t1 - t0
    if h <= 0.0:
        return q1.copy(), v1.copy(), np.zeros_like(q1)
    s = t - t0
    # q(s) = a0 + a1 s + a2 s^2 + a3 s^3
    a2 = (3.0 * (q1 - q0) - (2.0 * v0 + v1) * h) / h**2
    a3 = (2.0 * (q0 - q1) + (v0 + v1) * h) / h**3
    return q0 + v0 * s + a2 * s**2 + a3 * s**3, v0 + 2 * a2 * s + 3 * a3 * s**2, 2 * a2 + 6 * a3 * s


def validate_trajectory(
    time_from_start: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray | None,
    joints: int,
    allow_nonzero_velocity_at_trajectory_end: bool = False,
) -> str | None:
    """joint_trajectory_controller's `validate_trajectory_msg` on a message's points (controller joint order):
    its rejection, or None. Only points after the first must come later than the one before (the first may lie at
    or before the start); `allow_nonzero_velocity_at_trajectory_end` is false on Jazzy (and in our configs)."""
    offsets = np.asarray(time_from_start, np.float64)
    if len(offsets) == 0:
        return "Empty trajectory received."
    if np.any(np.diff(offsets) <= 0.0):
        return "Time between points needs to be strictly increasing."
    if np.shape(positions) != (len(offsets), joints) or (
        velocities is not None and np.shape(velocities) != (len(offsets), joints)
    ):
        return "Mismatch between joint_names size and number of positions/velocities"
    if (
        velocities is not None
        and not allow_nonzero_velocity_at_trajectory_end
        and np.any(
            np.abs(velocities[-1]) > np.finfo(np.float32).eps  # JTC: fabs(v) > std::numeric_limits<float>::epsilon()
        )
    ):
        return "Velocity of last trajectory point is not zero"
    return None


class JTCFollower:
    """The desired state of joint_trajectory_controller fed with `receive(...)` messages and sampled by
    `update(t, measured)` at its update rate. A perfect tracker follows `update`'s output."""

    def __init__(self, position: np.ndarray, start_state: StartState = StartState.DESIRED) -> None:
        q = np.asarray(position, np.float64).copy()
        self.start_state = start_state
        self.commanded = (None, q, np.zeros_like(q))  # (time of the last update, position, velocity)
        self._active: _Trajectory | None = None
        self._pending: _Trajectory | None = None
        self.rejected = 0  # messages refused as JTC refuses them

    def receive(
        self,
        time_from_start: np.ndarray,
        positions: np.ndarray,
        velocities: np.ndarray | None = None,
        stamp: float = 0.0,
    ) -> str | None:
        """A JointTrajectory message (points in controller joint order). Returns JTC's rejection, or None when
        the message becomes the running trajectory at the next update."""
        offsets = np.asarray(time_from_start, np.float64)
        rejection = validate_trajectory(offsets, positions, velocities, len(self.commanded[1]))
        if rejection:
            self.rejected += 1
            return rejection
        self._pending = _Trajectory(
            start=stamp if stamp > 0.0 else None,
            offsets=offsets,
            positions=np.asarray(positions, np.float64),
            velocities=None if velocities is None else np.asarray(velocities, np.float64),
        )
        return None

    def needs_measured(self) -> bool:
        """Whether the next `update` takes the measured state (a message waits and starts from it)."""
        return self._pending is not None and self.start_state is StartState.MEASURED

    def update(
        self, t: float, measured: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One controller update at time t: the desired position, velocity and acceleration. `measured`
        ((J,) position, (J,) velocity) is needed with `StartState.MEASURED`."""
        if self._pending is not None:
            self._active, self._pending = self._pending, None
        traj = self._active
        last_t, last_q, last_v = self.commanded
        if traj is None:
            q, v, a = last_q.copy(), np.zeros_like(last_q), np.zeros_like(last_q)
        else:
            if traj.before is None:  # the first sample of this trajectory
                if traj.start is None:
                    traj.start = t
                traj.times = traj.start + traj.offsets
                if self.start_state is StartState.DESIRED:
                    traj.before = (t if last_t is None else last_t, last_q, last_v)
                elif self.start_state is StartState.LAST_COMMANDED:
                    traj.before = (t, last_q, last_v)
                else:
                    if measured is None:
                        raise ValueError("StartState.MEASURED needs the measured state")
                    traj.before = (t, np.asarray(measured[0], np.float64), np.asarray(measured[1], np.float64))
            q, v, a = self._sample(traj, t)
        self.commanded = (t, q, v)
        return q, v, a

    @staticmethod
    def _sample(traj: _Trajectory, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        times = traj.times
        t_b, q_b, v_b = traj.before
        if t >= times[-1]:
            last = traj.positions[-1].copy()
            return last, np.zeros_like(last), np.zeros_like(last)
        i = int(np.searchsorted(times, t, side="right"))  # the point ahead of t
        if i == 0:
            t0, q0, v0 = t_b, q_b, v_b
        else:
            t0, q0 = times[i - 1], traj.positions[i - 1]
            v0 = None if traj.velocities is None else traj.velocities[i - 1]
        t1, q1 = times[i], traj.positions[i]
        v1 = None if traj.velocities is None else traj.velocities[i]
        if v0 is None or v1 is None:  # positions only: linear
            h = max(t1 - t0, 1e-12)
            s = np.clip((t - t0) / h, 0.0, 1.0)
            return q0 + s * (q1 - q0), (q1 - q0) / h, np.zeros_like(q0)
        return hermite(t0, q0, v0, t1, q1, v1, t)
