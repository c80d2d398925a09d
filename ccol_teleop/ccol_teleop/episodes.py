"""Episode bags on disk: numbered rosbag2 MCAP directories written so that a crash loses at most the episode
in progress.

    output_dir/
      episode_0000/          a finished episode: metadata.yaml + MCAP file (ros2 bag info / Foxglove) + episode.json
      episode_0001.partial/  the episode being recorded (renamed when it is saved)
      episode_0002.incomplete/  left by a crash, found at the next start; never deleted, never overwritten

Indices only grow: a new episode takes max(existing index) + 1 over every name above, including discarded ones
(`episode_0003.discarded/` is deleted, but its index is not reused within a session).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from ccol_policy.bags import GRIPPER_COMMAND_TOPIC, INSTRUCTION_TOPIC, METADATA_FILE

__all__ = ["GRIPPER_COMMAND_TOPIC", "INSTRUCTION_TOPIC"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^episode_(\d{4,})(\.\w+)?$")


def episode_indices(out_dir: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in out_dir.iterdir() if (m := _NAME.match(p.name)))


def next_index(out_dir: Path, floor: int = 0) -> int:
    used = episode_indices(out_dir) if out_dir.is_dir() else []
    return max([floor, *(i + 1 for i in used)])


def recover_crashed(out_dir: Path) -> list[Path]:
    """Rename episodes a crash left in progress to *.incomplete (kept for inspection, skipped by the converter)."""
    found = []
    if not out_dir.is_dir():
        return found
    for path in sorted(out_dir.glob("episode_*.partial")):
        target = path.with_suffix(".incomplete")
        path.rename(target)
        found.append(target)
        log.warning("found %s left by a crash; kept as %s", path.name, target.name)
    return found


@dataclass
class EpisodeWriter:
    """One episode being recorded. Raw CDR messages go straight into the bag; nothing is kept in memory."""

    out_dir: Path
    index: int
    topics: dict[str, str]  # topic -> message type ("sensor_msgs/msg/Image")
    metadata: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.name = f"episode_{self.index:04d}"
        self.partial = self.out_dir / f"{self.name}.partial"
        self.final = self.out_dir / self.name
        if self.final.exists() or self.partial.exists():
            raise FileExistsError(f"{self.final} exists; episodes are never overwritten")
        typestore = get_typestore(Stores.ROS2_JAZZY)
        self._writer = Writer(self.partial, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {
            topic: self._writer.add_connection(topic, msgtype, typestore=typestore)
            for topic, msgtype in {**self.topics, INSTRUCTION_TOPIC: "std_msgs/msg/String"}.items()
        }
        self.counts = {topic: 0 for topic in self.topics}
        self.start_time = time.time()
        self.first_stamp_ns: int | None = None
        self.last_stamp_ns: int | None = None
        self.closed = False

    def write(self, topic: str, timestamp_ns: int, raw: bytes) -> None:
        self._writer.write(self._connections[topic], timestamp_ns, raw)
        if topic in self.counts:
            self.counts[topic] += 1
        self.first_stamp_ns = timestamp_ns if self.first_stamp_ns is None else self.first_stamp_ns
        self.last_stamp_ns = timestamp_ns

    def close(self, success: bool = True, **extra: Any) -> Path:
        """Finish the bag, write episode.json and rename the directory: the episode now exists as a whole."""
        self._writer.close()
        self.closed = True
        stop = time.time()
        meta = {
            **self.metadata,
            "episode": self.name,
            "start_time": self.start_time,
            "stop_time": stop,
            "duration_s": round(stop - self.start_time, 3),
            "frame_counts": self.counts,
            "success": bool(success),
            **extra,
        }
        (self.partial / METADATA_FILE).write_text(json.dumps(meta, indent=1))
        self.partial.rename(self.final)
        return self.final

    def discard(self) -> None:
        if not self.closed:
            try:
                self._writer.close()
            except Exception:
                log.debug("closing discarded episode failed", exc_info=True)
        self.closed = True
        shutil.rmtree(self.partial, ignore_errors=True)
