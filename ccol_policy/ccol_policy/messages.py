"""sensor_msgs/Image fields -> numpy arrays, without ROS or torch: shared by the policy node and the bag tools; and
the one JointTrajectory a `Command` becomes (policy_node and `ccol replay --robot`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ccol_policy.control import Command, ObservationError


def image_to_rgb(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB. Raises ObservationError for encodings we cannot use."""
    enc = encoding.lower()
    if enc not in ("rgb8", "bgr8", "rgba8", "bgra8"):
        raise ObservationError(f"image: unsupported encoding {encoding!r}; publish rgb8 or bgr8")
    channels = 4 if enc.endswith("a8") else 3
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), np.uint8)
    if step < width * channels or len(buf) < step * height:
        raise ObservationError(f"image: {len(buf)} bytes do not hold {height}x{width} {encoding} (step {step})")
    img = buf[: step * height].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    img = img[..., :3]
    if enc.startswith("bgr"):
        img = img[..., ::-1]
    return np.ascontiguousarray(img)


def depth_to_metres(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """16UC1 (mm, realsense-ros default) or 32FC1 (m) depth -> (H, W) float32 metres."""
    enc = encoding.upper()
    dtype = {"16UC1": np.dtype("<u2"), "MONO16": np.dtype("<u2"), "32FC1": np.dtype("<f4")}.get(enc)
    if dtype is None:
        raise ObservationError(f"depth: unsupported encoding {encoding!r}; publish 16UC1 (mm) or 32FC1 (m)")
    raw = bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()
    if len(raw) < step * height or step < width * dtype.itemsize:
        raise ObservationError(f"depth: {len(raw)} bytes do not hold {height}x{width} {encoding}")
    rows = np.frombuffer(raw[: step * height], np.uint8).reshape(height, step)[:, : width * dtype.itemsize]
    d = rows.copy().view(dtype).reshape(height, width).astype(np.float32)
    d = d / 1000.0 if dtype.kind == "u" else d
    return np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)


def trajectory_message(joint_names: list[str], command: Command, now: float) -> Any:
    """trajectory_msgs/JointTrajectory of a command with header.stamp 0 (joint_trajectory_controller starts it at its
    next update): time_from_start = each point's time on the plan's grid - now (the first at or before now, as a
    negative or zero Duration), positions and velocities, the last point at rest."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory(joint_names=list(joint_names))
    for offset, row, vel in zip(command.time_from_start(now), command.positions, command.velocities):
        ns = round(float(offset) * 1e9)  # Duration: sec may be negative, 0 <= nanosec < 1e9
        msg.points.append(
            JointTrajectoryPoint(
                positions=row.tolist(),
                velocities=vel.tolist(),
                time_from_start=Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000),
            )
        )
    return msg
