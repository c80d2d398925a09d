"""rosbag2 bags (MCAP or sqlite3) -> synchronised episodes: shared by `ccol build-dataset` and `ccol eval-bag`.

Streams are put on one time grid at the control rate using the message header stamps: joint positions and the
gripper width are interpolated linearly (the gripper *label* is the command in force on `/ccol/gripper_command`
when the bag has it, else the measured width), the image at each grid time is the newest one not after it and no
older than `max_image_age_s`. A gap in any stream, NaN joints or a missing instruction makes the bag fail with
a reason (`BagError`); nothing is silently included. Images are decoded in a second pass, one at a time, so
large bags stream instead of being loaded whole.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ccol_policy.control import DEFAULT_CONTROL_RATE_HZ, ObservationError
from ccol_policy.messages import depth_to_metres, image_to_rgb
from ccol_policy.robots import arm_joint_names, finger_joint_names, profile_for

log = logging.getLogger(__name__)

INSTRUCTION_TOPIC = "/ccol/instruction"
# What the gripper was told (sensor_msgs/JointState, name ["gripper_command"], position [width m]), written by the
# recorder when the operator commands the gripper and by the simulator's teacher: the gripper action label.
GRIPPER_COMMAND_TOPIC = "/ccol/gripper_command"


class BagError(ValueError):
    """A bag that cannot be used; the message says why."""


@dataclass
class BagTopics:
    """Topic names, as the recorder and the policy node use them (realsense-ros 4.x, the arm's driver row)."""

    arm_id: str = "fr3"
    joint_states: str = ""  # "": the driver's high-rate topic (/franka/joint_states)
    gripper: str | None = ""  # "": the driver's gripper joint states (/franka_gripper/joint_states); None: none
    color: str = "/camera/camera/color/image_raw"
    depth: str = "/camera/camera/aligned_depth_to_color/image_raw"
    instruction: str = INSTRUCTION_TOPIC
    gripper_command: str = GRIPPER_COMMAND_TOPIC

    def __post_init__(self) -> None:
        if not self.joint_states:
            self.joint_states = profile_for(self.arm_id).joint_states_topic

    @property
    def gripper_topic(self) -> str | None:
        if self.gripper is None:
            return None
        return self.gripper or profile_for(self.arm_id).gripper_joint_states_topic

    @property
    def arm_joints(self) -> list[str]:
        return arm_joint_names(self.arm_id)

    @property
    def fingers(self) -> list[str]:
        return finger_joint_names(self.arm_id)


@dataclass
class SyncConfig:
    control_rate_hz: float = DEFAULT_CONTROL_RATE_HZ
    max_image_age_s: float = 0.1
    max_joint_gap_s: float = 0.1
    # franka_ros2's gripper state comes at 15 Hz (66 ms): 0.1 s would drop a bag for one late message
    max_gripper_gap_s: float = 0.25
    image_width: int = 224
    image_height: int = 224
    use_depth: bool = False
    use_gripper: bool = True


@dataclass
class Streams:
    """Pass 1 of a bag: everything but the pixels."""

    joint_t: np.ndarray  # (N,) s
    joint_q: np.ndarray  # (N, 7)
    grip_t: np.ndarray  # (M,)
    grip_w: np.ndarray  # (M,)
    image_t: np.ndarray  # (I,) header stamps of colour images, in bag order
    depth_t: np.ndarray  # (J,)
    instruction: str | None
    command_t: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (C,) gripper commands
    command_w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyncedEpisode:
    times: np.ndarray  # (T,) s
    qpos: np.ndarray  # (T, 7 or 8)
    action: np.ndarray  # (T, 7 or 8): the next grid step's joint positions and gripper width
    image_index: np.ndarray  # (T,) index into the bag's colour images
    depth_index: np.ndarray | None
    instruction: str
    gripper_label: str = "command"  # "command": what the gripper was told; "measured": finger width (older bags)


def _stamp(msg: Any, fallback_ns: int) -> float:
    s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    return s if s > 0 else fallback_ns * 1e-9


def open_reader(bag_dir: Path):  # noqa: ANN201 - rosbags AnyReader
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    bag_dir = Path(bag_dir)
    if not bag_dir.exists():
        raise BagError(f"{bag_dir}: does not exist")
    if bag_dir.is_dir() and not (bag_dir / "metadata.yaml").is_file():
        raise BagError(f"{bag_dir}: no metadata.yaml; not a finished rosbag2 bag (a crashed recording?)")
    try:
        reader = AnyReader([bag_dir], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:
        raise BagError(
            f"{bag_dir}: cannot open bag ({type(exc).__name__}: {exc}); the file is truncated or corrupt"
        ) from exc
    return reader


METADATA_FILE = "episode.json"  # beside an episode bag's metadata.yaml, written by ccol_teleop.episodes


def read_metadata(bag_dir: str | Path) -> dict[str, Any]:
    """An episode bag's episode.json (instruction, success, arm_id, topics; a simulator bag's seed and layout),
    the one reader of the file; {} for a bag without one (plain `ros2 bag record`)."""
    path = Path(bag_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def read_streams(bag_dir: Path, topics: BagTopics, cfg: SyncConfig) -> Streams:
    """Pass 1: joint states, gripper, image stamps and the instruction."""
    reader = open_reader(bag_dir)
    try:
        available = {c.topic for c in reader.connections}
        needed = [topics.joint_states, topics.color]
        if cfg.use_gripper and topics.gripper_topic:
            needed.append(topics.gripper_topic)
        if cfg.use_depth:
            needed.append(topics.depth)
        missing = [t for t in needed if t not in available and not (t == topics.gripper_topic)]
        if missing:
            raise BagError(f"{bag_dir}: topic(s) {missing} not in the bag (it has {sorted(available)})")
        extra = {topics.instruction, topics.gripper_command}
        wanted = [c for c in reader.connections if c.topic in set(needed) | extra]
        jt, jq, gt, gw, it, dt, ct, cw = [], [], [], [], [], [], [], []
        instruction = None
        for conn, ts, raw in reader.messages(connections=wanted):
            if conn.topic == topics.instruction:
                if instruction is None:
                    instruction = str(reader.deserialize(raw, conn.msgtype).data)
                continue
            if conn.topic in (topics.color, topics.depth) and conn.msgtype.endswith("Image"):
                stamp = _header_stamp_from_cdr(raw, ts)
                (it if conn.topic == topics.color else dt).append(stamp)
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.topic == topics.gripper_command:
                if len(msg.position) and np.isfinite(msg.position[0]):
                    ct.append(_stamp(msg, ts))
                    cw.append(float(msg.position[0]))
                continue
            index = {n: i for i, n in enumerate(msg.name)}
            pos = np.asarray(msg.position, np.float64)
            if conn.topic == topics.joint_states:
                if not all(n in index for n in topics.arm_joints):
                    raise BagError(
                        f"{bag_dir}: joint states name {list(msg.name)}, not the {topics.arm_id} joints "
                        f"{topics.arm_joints}; pass --arm-id"
                    )
                jt.append(_stamp(msg, ts))
                jq.append(pos[[index[n] for n in topics.arm_joints]])
                if all(f in index for f in topics.fingers) and topics.gripper_topic not in available:
                    gt.append(_stamp(msg, ts))
                    gw.append(pos[[index[f] for f in topics.fingers]].sum())
            elif conn.topic == topics.gripper_topic and all(f in index for f in topics.fingers):
                gt.append(_stamp(msg, ts))
                gw.append(pos[[index[f] for f in topics.fingers]].sum())
    except BagError:
        raise
    except Exception as exc:
        raise BagError(
            f"{bag_dir}: reading failed ({type(exc).__name__}: {exc}); the bag is truncated or corrupt"
        ) from exc
    finally:
        reader.close()
    meta = read_metadata(bag_dir)
    if instruction is None:
        instruction = meta.get("instruction")
    return Streams(
        joint_t=np.asarray(jt),
        joint_q=np.asarray(jq).reshape(-1, 7),
        grip_t=np.asarray(gt),
        grip_w=np.asarray(gw),
        image_t=np.asarray(it),
        depth_t=np.asarray(dt),
        instruction=instruction,
        metadata=meta,
        command_t=np.asarray(ct),
        command_w=np.asarray(cw),
    )


def _header_stamp_from_cdr(raw: bytes | memoryview, fallback_ns: int) -> float:
    """The header stamp of a CDR-serialised message without decoding its payload (images are large)."""
    head = bytes(raw[4:12])  # 4-byte encapsulation header, then int32 sec, uint32 nanosec (little endian CDR)
    little = bytes(raw[1:2]) == b"\x01"
    order = "<" if little else ">"
    sec, nsec = np.frombuffer(head, dtype=f"{order}i4", count=1)[0], np.frombuffer(head[4:], f"{order}u4", count=1)[0]
    s = float(sec) + float(nsec) * 1e-9
    return s if s > 0 else fallback_ns * 1e-9


def synchronise(s: Streams, cfg: SyncConfig, where: str = "bag") -> SyncedEpisode:
    if len(s.joint_t) < 2:
        raise BagError(f"{where}: fewer than 2 joint states")
    if len(s.image_t) == 0:
        raise BagError(f"{where}: no colour images (dead camera?)")
    use_gripper = cfg.use_gripper
    if use_gripper and len(s.grip_t) < 2:
        raise BagError(f"{where}: no gripper joint states; record them or pass --no-gripper")
    starts = [s.joint_t[0], s.image_t[0]] + ([s.grip_t[0]] if use_gripper else [])
    ends = [s.joint_t[-1], s.image_t[-1] + cfg.max_image_age_s] + ([s.grip_t[-1]] if use_gripper else [])
    t0, t1 = max(starts), min(ends)
    period = 1.0 / cfg.control_rate_hz
    if t1 - t0 < 2 * period:
        raise BagError(f"{where}: the streams overlap for only {max(t1 - t0, 0):.2f}s")
    grid = t0 + np.arange(int(np.floor((t1 - t0) / period)) + 1) * period
    streams = [("joint state", s.joint_t, cfg.max_joint_gap_s, "max_joint_gap_s")]
    if use_gripper:
        streams.append(("gripper state", s.grip_t, cfg.max_gripper_gap_s, "max_gripper_gap_s"))
    for name, t, limit, key in streams:
        inside = t[(t >= t0 - limit) & (t <= t1 + limit)]
        gaps = np.diff(inside)
        if len(gaps) and gaps.max() > limit:
            i = int(gaps.argmax())
            raise BagError(f"{where}: {name} gap of {gaps[i]:.2f}s at t={inside[i] - t0:.2f}s ({key} {limit})")
    order = np.argsort(s.image_t, kind="stable")
    sorted_t = s.image_t[order]
    k = np.searchsorted(sorted_t, grid + 1e-9, side="right") - 1
    if (k < 0).any():
        raise BagError(f"{where}: no image before t={grid[int(np.argmax(k < 0))] - t0:.2f}s")
    age = grid - sorted_t[k]
    if age.max() > cfg.max_image_age_s:
        i = int(age.argmax())
        raise BagError(
            f"{where}: camera gap: the newest image at t={grid[i] - t0:.2f}s is {age[i]:.2f}s old "
            f"(max_image_age_s {cfg.max_image_age_s}); dead or dropped camera"
        )
    image_index = order[k]
    depth_index = None
    if cfg.use_depth:
        if len(s.depth_t) == 0:
            raise BagError(f"{where}: no depth images")
        d_order = np.argsort(s.depth_t, kind="stable")
        dk = np.clip(np.searchsorted(s.depth_t[d_order], grid + 1e-9, side="right") - 1, 0, None)
        if (grid - s.depth_t[d_order][dk]).max() > cfg.max_image_age_s:
            raise BagError(f"{where}: depth gap larger than max_image_age_s")
        depth_index = d_order[dk]
    q = np.stack([np.interp(grid, s.joint_t, s.joint_q[:, j]) for j in range(7)], 1)
    if use_gripper:
        q = np.concatenate([q, np.interp(grid, s.grip_t, s.grip_w)[:, None]], 1)
    if not np.isfinite(q).all():
        raise BagError(f"{where}: joint states contain NaN or inf")
    if not s.instruction or not s.instruction.strip():
        raise BagError(f"{where}: no instruction in the bag or its episode.json; pass --instruction")
    action = np.concatenate([q[1:], q[-1:]], 0)
    label = "measured"
    if use_gripper and len(s.command_t):
        # the command in force at the next grid step (zero-order hold); the measured width before the first one
        order = np.argsort(s.command_t, kind="stable")
        c = np.searchsorted(s.command_t[order], grid + period + 1e-9, side="right") - 1
        action[:, 7] = np.where(c >= 0, s.command_w[order][np.clip(c, 0, None)], action[:, 7])
        label = "command"
    return SyncedEpisode(
        grid - t0,
        q.astype(np.float32),
        action.astype(np.float32),
        image_index,
        depth_index,
        s.instruction.strip(),
        gripper_label=label if use_gripper else "none",
    )


def iter_images(
    bag_dir: Path, topic: str, indices: np.ndarray, depth: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """Pass 2: decode only the images at `indices` (positions in bag order): yields (index, RGB or metres)."""
    wanted = set(int(i) for i in indices)
    last = max(wanted) if wanted else -1
    reader = open_reader(bag_dir)
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        for i, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
            if i > last:
                break
            if i not in wanted:
                continue
            msg = reader.deserialize(raw, conn.msgtype)
            try:
                if depth:
                    yield i, depth_to_metres(msg.encoding, msg.height, msg.width, msg.step, msg.data)
                else:
                    yield i, image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
            except ObservationError as exc:
                raise BagError(f"{bag_dir}: {exc}") from exc
    finally:
        reader.close()


def resize(img: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    from PIL import Image as PILImage

    if img.shape[1] == width and img.shape[0] == height:
        return img
    mode = PILImage.NEAREST if nearest else PILImage.BILINEAR
    if img.dtype == np.float32:
        return np.asarray(PILImage.fromarray(img, mode="F").resize((width, height), mode))
    return np.asarray(PILImage.fromarray(img).resize((width, height), mode))


def find_bags(paths: list[str | Path]) -> list[Path]:
    """Bag directories given directly or found one level below (a recorder output directory)."""
    bags: list[Path] = []
    for p in map(Path, paths):
        if (p / "metadata.yaml").is_file():
            bags.append(p)
        elif p.is_dir():
            found = sorted(c for c in p.iterdir() if (c / "metadata.yaml").is_file())
            crashed = sorted(c for c in p.iterdir() if c.is_dir() and c.suffix in (".incomplete", ".partial"))
            for c in crashed:
                log.warning("skipping %s: recording did not finish", c.name)
            bags += found
        else:
            raise BagError(f"{p}: not a bag or a directory of bags")
    if not bags:
        raise BagError(f"no rosbag2 bags found in {', '.join(map(str, paths))}")
    return bags
