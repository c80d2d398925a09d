"""`ccol replay --robot`: a recorded episode's action labels sent to the robot's controller through the policy's
command path (`ClosedLoopExecutor` with policy_node's safe defaults: half the velocity and acceleration limits, the
workspace box, the fingertip floor; the same continuous stream on the same control grid), the way `lerobot-replay`
checks a dataset on the arm.

Starts in dry run (trajectories on `/ccol_replay/dry_run_trajectory`, nothing reaches the controller); with
`--execute` it publishes on the controller's topic. The robot is the episodes' own (HDF5 attrs, episode.json) unless
`--arm-id` names it. It waits for fresh joint states first, and a joint state that goes stale or invalid
mid-replay stops it with the braking trajectory policy_node sends.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from ccol_policy.control import (
    SAFE_ACCELERATION_SCALE,
    SAFE_VELOCITY_SCALE,
    SAFE_WORKSPACE,
    ClosedLoopExecutor,
    control_rate_hz,
)
from ccol_policy.robots import arm_joint_names, tcp_floor

log = logging.getLogger(__name__)
DEFAULT_ARM_ID = "fr3"


def _load_labels(args: argparse.Namespace) -> list[tuple[str, np.ndarray, float, str | None]]:
    """(name, action labels (T, A), control rate, the episode's arm id or None) per episode."""
    from pathlib import Path

    import h5py

    from ccol_policy.bags import BagTopics, SyncConfig, find_bags, read_metadata, read_streams, synchronise

    out = []
    for p in map(Path, args.episodes):
        files = [p] if p.suffix == ".hdf5" else sorted(p.glob("episode_*.hdf5")) if p.is_dir() else []
        for f in files:  # HDF5 episodes or a dataset directory
            with h5py.File(f, "r") as h:
                arm = h.attrs.get("arm_id")
                out.append((f.name, h["action"][:], control_rate_hz(h.attrs, args.rate), str(arm) if arm else None))
        if not files:
            cfg = SyncConfig(control_rate_hz=args.rate, image_width=8, image_height=8)
            for bag in find_bags([p]):
                arm = args.arm_id or read_metadata(bag).get("arm_id") or DEFAULT_ARM_ID
                ep = synchronise(read_streams(bag, BagTopics(arm_id=arm), cfg), cfg, where=str(bag))
                out.append((bag.name, ep.action, args.rate, arm))
    return out


def robot_of(episodes: list[tuple[str, np.ndarray, float, str | None]], arm_id: str | None) -> str:
    """The arm to command: `arm_id` when given (episodes recorded on another arm are refused), else the one every
    episode names (fr3 when none does)."""
    named = {arm for _, _, _, arm in episodes if arm}
    if arm_id:
        other = sorted(named - {arm_id})
        if other:
            raise ValueError(f"--arm-id {arm_id} but the episodes were recorded on {other}: replay them on that arm")
        return arm_id
    if len(named) > 1:
        raise ValueError(f"the episodes come from several arms {sorted(named)}: replay one arm's at a time")
    return named.pop() if named else DEFAULT_ARM_ID


def replay_executor(
    arm_id: str, dt: float, chunk: int, action_dim: int, mode: str, table_z: float | None
) -> ClosedLoopExecutor:
    """The executor `ccol replay --robot` drives the arm with: policy_node's safe defaults."""
    return ClosedLoopExecutor(
        arm_id,
        dt,
        chunk,
        action_dim,
        mode=mode,
        velocity_scale=SAFE_VELOCITY_SCALE,
        acceleration_scale=SAFE_ACCELERATION_SCALE,
        workspace=SAFE_WORKSPACE,
        tcp_floor_z=None if table_z is None else tcp_floor(table_z),
    )


def replay_on_robot(args: argparse.Namespace, max_joint_state_age_s: float = 0.1) -> int:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from ccol_policy.messages import trajectory_message

    episodes = _load_labels(args)
    arm_id = robot_of(episodes, args.arm_id)
    joints = arm_joint_names(arm_id)
    rclpy.init()
    node = rclpy.create_node("ccol_replay")
    topic = args.trajectory_topic if args.execute else "~/dry_run_trajectory"
    pub = node.create_publisher(JointTrajectory, topic, 10)
    state: dict[str, tuple[np.ndarray, float]] = {}

    def on_joints(msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in joints):
            state["q"] = (np.array([msg.position[index[n]] for n in joints]), time.monotonic())

    node.create_subscription(JointState, args.joint_states_topic, on_joints, qos_profile_sensor_data)

    def fresh_q() -> np.ndarray | None:
        q = state.get("q")
        if q is None or time.monotonic() - q[1] > max_joint_state_age_s or not np.isfinite(q[0]).all():
            return None
        return q[0]

    def spin_until(t: float) -> None:
        while time.monotonic() < t:
            rclpy.spin_once(node, timeout_sec=max(0.0, t - time.monotonic()))

    log.info(
        "%s: %d episode(s) of %s -> %s (velocity and acceleration at %g/%g of the limits, workspace box %s)",
        "EXECUTING" if args.execute else "dry run",
        len(episodes),
        arm_id,
        topic,
        SAFE_VELOCITY_SCALE,
        SAFE_ACCELERATION_SCALE,
        SAFE_WORKSPACE,
    )
    try:
        deadline = time.monotonic() + 5.0
        while fresh_q() is None and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        if fresh_q() is None:
            log.error("no valid joint states on %s within 5 s; is the robot driver running?", args.joint_states_topic)
            return 2
        for name, labels, rate, _ in episodes:
            dt = 1.0 / rate
            ex = replay_executor(
                arm_id,
                dt,
                args.chunk,
                labels.shape[1],
                args.execution_mode,
                None if args.no_fingertip_floor else args.table_z,
            )
            padded = np.concatenate([labels, np.repeat(labels[-1:], args.chunk, 0)])
            t0 = time.monotonic()
            log.info("replaying %s (%d steps at %g Hz)", name, len(labels), rate)
            for step in range(len(labels)):
                spin_until(t0 + step * dt)
                now = time.monotonic()
                q = fresh_q()
                if q is None:
                    stop = ex.stop(now)
                    if stop is not None:
                        pub.publish(trajectory_message(joints, stop, now))
                    log.error("%s: joint state stale or invalid at step %d; stopped (braking)", name, step)
                    return 1
                command, reason = ex.step(now, padded[step : step + args.chunk], q)
                if reason:
                    stop = ex.stop(now)
                    if stop is not None:
                        pub.publish(trajectory_message(joints, stop, now))
                    log.error("%s: stopped at step %d: %s (braking)", name, step, reason)
                    return 1
                pub.publish(trajectory_message(joints, command, now))
            spin_until(float(command.times[-1]) + 0.2)  # the plan's braking tail, then the next episode
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
