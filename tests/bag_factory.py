"""Bags made in the test with the `rosbags` writers (MCAP or sqlite3), shaped like the recorder's or `ros2 bag
record`'s: joint states at 100 Hz, gripper at 50 Hz, colour images at 30 Hz, optional instruction topic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ccol_policy.robots import profile_for

TS = get_typestore(Stores.ROS2_JAZZY)
Header = TS.types["std_msgs/msg/Header"]
Time = TS.types["builtin_interfaces/msg/Time"]
JointState = TS.types["sensor_msgs/msg/JointState"]
Image = TS.types["sensor_msgs/msg/Image"]
String = TS.types["std_msgs/msg/String"]


def trajectory(t: np.ndarray) -> np.ndarray:
    """(T,) seconds -> (T, 8) joint positions + gripper width: a smooth motion from the Panda ready pose."""
    base = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.04])
    q = np.tile(base, (len(t), 1))
    q[:, :7] += 0.3 * np.sin(0.5 * t)[:, None] * np.linspace(0.5, 1.0, 7)
    q[:, 7] = 0.04 + 0.03 * np.cos(t)
    return q


def render(q: np.ndarray, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A bright bar whose position follows joint 1, on black (H, W, 3)."""
    img = np.zeros((*size, 3), np.uint8)
    x = int((q[0] + 0.5) * size[1]) % size[1]
    img[:, max(0, x - 3) : x + 3] = (255, 200, 0)
    return img


def _header(t: float, frame: str = "") -> object:
    return Header(stamp=Time(sec=int(t), nanosec=int(round((t % 1) * 1e9))), frame_id=frame)


def make_bag(
    path: Path,
    duration: float = 3.0,
    arm_id: str = "fr3",
    storage: str = "mcap",
    instruction: str | None = "lift the pen",
    camera_gap: tuple[float, float] | None = None,
    with_images: bool = True,
    encoding: str = "rgb8",
    t0: float = 1000.0,
    image_size: tuple[int, int] = (48, 64),
    gripper_commands: list[tuple[float, float]] | None = None,  # (time s, width m) on /ccol/gripper_command
) -> Path:
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    writer = Writer(path, version=9, storage_plugin=plugin)
    writer.open()
    profile = profile_for(arm_id)  # the driver's topic names, as the recorder writes them
    js = writer.add_connection(profile.joint_states_topic, "sensor_msgs/msg/JointState", typestore=TS)
    grip = writer.add_connection(profile.gripper_joint_states_topic, "sensor_msgs/msg/JointState", typestore=TS)
    cam = (
        writer.add_connection("/camera/camera/color/image_raw", "sensor_msgs/msg/Image", typestore=TS)
        if with_images
        else None
    )
    cmd = (
        writer.add_connection("/ccol/gripper_command", "sensor_msgs/msg/JointState", typestore=TS)
        if gripper_commands
        else None
    )
    events = [(t, ("cmd", w)) for t, w in gripper_commands or []]
    for t in np.arange(0, duration, 0.01):
        events.append((t, "js"))
    for t in np.arange(0, duration, 0.02):
        events.append((t, "grip"))
    for t in np.arange(0, duration, 1 / 30):
        if camera_gap is None or not camera_gap[0] <= t < camera_gap[1]:
            events.append((t, "cam"))
    if instruction is not None:
        con = writer.add_connection("/ccol/instruction", "std_msgs/msg/String", typestore=TS)
        writer.write(con, int(t0 * 1e9), TS.serialize_cdr(String(data=instruction), "std_msgs/msg/String"))
    for t, kind in sorted(events, key=lambda e: e[0]):
        stamp = t0 + t
        q = trajectory(np.array([t]))[0]
        ns = int(stamp * 1e9) + 1000
        if isinstance(kind, tuple):
            msg = JointState(
                header=_header(stamp),
                name=["gripper_command"],
                position=np.array([kind[1]]),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            writer.write(cmd, ns, TS.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
        elif kind == "js":
            msg = JointState(
                header=_header(stamp),
                name=[f"{arm_id}_joint{i}" for i in range(1, 8)],
                position=q[:7].astype(np.float64),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            writer.write(js, ns, TS.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
        elif kind == "grip":
            msg = JointState(
                header=_header(stamp),
                name=[f"{arm_id}_finger_joint1", f"{arm_id}_finger_joint2"],
                position=np.array([q[7] / 2, q[7] / 2]),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            writer.write(grip, ns, TS.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
        elif cam is not None:
            img = render(q, image_size)
            data = img if encoding == "rgb8" else img[..., 0].copy()
            msg = Image(
                header=_header(stamp, "camera_color_optical_frame"),
                height=img.shape[0],
                width=img.shape[1],
                encoding=encoding,
                is_bigendian=0,
                step=img.shape[1] * (3 if encoding == "rgb8" else 1),
                data=data.reshape(-1),
            )
            writer.write(cam, ns, TS.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    writer.close()
    return path
