"""`ccol replay --robot`: a recorded episode's action labels sent to the robot's controller through the policy's
command path (`ClosedLoopExecutor`: rate limiting, holds), the way `lerobot-replay` checks a dataset on the arm.

Starts in dry run (trajectories on `/ccol_replay/dry_run_trajectory`, nothing reaches the controller); with
`--execute` it publishes on the controller's topic. It waits for fresh joint states first, and a joint state
that goes stale or invalid mid-replay stops it with a trajectory holding the last measured position.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from ccol_policy.control import ClosedLoopExecutor, control_rate_hz
from ccol_policy.robots import arm_joint_names, tcp_floor

log = logging.getLogger(__name__)


def _load_labels(args: argparse.Namespace) -> list[tuple[str, np.ndarray, float]]:
    from pathlib import Path

    import h5py

    from ccol_policy.bags import BagTopics, SyncConfig, find_bags, read_streams, synchronise

    out = []
    for p in map(Path, args.episodes):
        files = [p] if p.suffix == ".hdf5" else sorted(p.glob("episode_*.hdf5")) if p.is_dir() else []
        for f in files:  # HDF5 episodes or a dataset directory
            with h5py.File(f, "r") as h:
                out.append((f.name, h["action"][:], control_rate_hz(h.attrs, args.rate)))
        if not files:
            cfg = SyncConfig(control_rate_hz=args.rate, image_width=8, image_height=8)
            for bag in find_bags([p]):
                ep = synchronise(read_streams(bag, BagTopics(arm_id=args.arm_id), cfg), cfg, where=str(bag))
                out.append((bag.name, ep.action, args.rate))
    return out


def replay_on_robot(args: argparse.Namespace, max_obs_age_s: float = 0.25) -> int:
    import rclpy
    from builtin_interfaces.msg import Duration
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    episodes = _load_labels(args)
    joints = arm_joint_names(args.arm_id)
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

    def publish(targets: np.ndarray, dt: float) -> None:
        msg = JointTrajectory(joint_names=joints)
        for i, row in enumerate(targets):
            ns = round((i + 1) * dt * 1e9)
            msg.points.append(
                JointTrajectoryPoint(
                    positions=row[:7].tolist(), time_from_start=Duration(sec=ns // 10**9, nanosec=ns % 10**9)
                )
            )
        pub.publish(msg)

    def fresh_q() -> np.ndarray | None:
        q = state.get("q")
        if q is None or time.monotonic() - q[1] > max_obs_age_s or not np.isfinite(q[0]).all():
            return None
        return q[0]

    log.info("%s: %d episode(s) -> %s", "EXECUTING" if args.execute else "dry run", len(episodes), topic)
    try:
        deadline = time.monotonic() + 5.0
        while fresh_q() is None and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        if fresh_q() is None:
            log.error("no valid joint states on %s within 5 s; is the robot driver running?", args.joint_states_topic)
            return 2
        for name, labels, rate in episodes:
            dt = 1.0 / rate
            ex = ClosedLoopExecutor(
                args.arm_id,
                dt,
                args.chunk,
                labels.shape[1],
                mode=args.execution_mode,
                tcp_floor_z=None if args.no_fingertip_floor else tcp_floor(args.table_z),
            )
            padded = np.concatenate([labels, np.repeat(labels[-1:], args.chunk, 0)])
            t0 = time.monotonic()
            log.info("replaying %s (%d steps at %g Hz)", name, len(labels), rate)
            for step in range(len(labels)):
                while time.monotonic() < t0 + step * dt:
                    rclpy.spin_once(node, timeout_sec=max(0.0, t0 + step * dt - time.monotonic()))
                q = fresh_q()
                if q is None:
                    last = state.get("q")
                    if last is not None and np.isfinite(last[0]).all():
                        publish(last[0][None], dt)
                    log.error("%s: joint state stale or invalid at step %d; stopped (holding)", name, step)
                    return 1
                targets, reason = ex.step(step * dt, padded[step : step + args.chunk], q)
                publish(targets, dt)
                if reason:
                    log.error("%s: stopped at step %d: %s (holding)", name, step, reason)
                    return 1
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
