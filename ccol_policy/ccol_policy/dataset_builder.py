"""`ccol build-dataset`: recorded bags -> HDF5 episodes of the core's format, with a summary of what was skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ccol_policy.bags import (
    GRIPPER_COMMAND_TOPIC,
    BagError,
    BagTopics,
    SyncConfig,
    find_bags,
    iter_images,
    read_metadata,
    read_streams,
    resize,
    synchronise,
)
from ccol_policy.data import write_episode

log = logging.getLogger(__name__)


@dataclass
class BuildRow:
    bag: str
    status: str  # "ok" or "skipped"
    frames: int = 0
    duration_s: float = 0.0
    instruction: str = ""
    reason: str = ""
    output: str = ""
    gripper_label: str = ""  # "command" or "measured" (bags recorded before gripper commands were logged)


def convert_bag(bag: Path, out_path: Path, topics: BagTopics, cfg: SyncConfig, instruction: str | None) -> BuildRow:
    streams = read_streams(bag, topics, cfg)
    if streams.instruction is None and instruction:
        streams.instruction = instruction
    ep = synchronise(streams, cfg, where=str(bag))
    images = np.zeros((len(ep.times), cfg.image_height, cfg.image_width, 3), np.uint8)
    decoded = {
        i: resize(img, cfg.image_width, cfg.image_height) for i, img in iter_images(bag, topics.color, ep.image_index)
    }
    for t, i in enumerate(ep.image_index):
        images[t] = decoded[int(i)]
    depth = None
    if cfg.use_depth and ep.depth_index is not None:
        dd = {
            i: resize(d, cfg.image_width, cfg.image_height, nearest=True)
            for i, d in iter_images(bag, topics.depth, ep.depth_index, depth=True)
        }
        depth = {"color": np.stack([np.clip(dd[int(i)] * 1000.0, 0, 65535).astype(np.uint16) for i in ep.depth_index])}
    write_episode(
        out_path,
        ep.qpos,
        ep.action,
        {"color": images},
        ep.instruction,
        depth=depth,
        arm_id=topics.arm_id,
        control_rate_hz=cfg.control_rate_hz,
        source=str(bag),
        sim=bool(streams.metadata.get("sim", False)),
        success=bool(streams.metadata.get("success", True)),
        gripper_label=ep.gripper_label,
        **({"seed": int(streams.metadata["seed"])} if "seed" in streams.metadata else {}),
        **({"layout": str(streams.metadata["layout"])} if "layout" in streams.metadata else {}),
    )
    return BuildRow(
        str(bag),
        "ok",
        len(ep.times),
        float(ep.times[-1]),
        ep.instruction,
        output=out_path.name,
        gripper_label=ep.gripper_label,
    )


def build_dataset(
    inputs: list[str | Path],
    out_dir: str | Path,
    topics: BagTopics | None = None,
    cfg: SyncConfig | None = None,
    instruction: str | None = None,
    include_failures: bool = False,
    progress: bool = True,
    arm_id_from_bag: bool = False,
) -> list[BuildRow]:
    """Convert every bag; bad bags are skipped with their reason. Returns one row per bag. With
    `arm_id_from_bag`, a bag whose episode.json names its `arm_id` (the recorder's and the simulator's do) is read
    with that robot's topics and joint names instead of `topics.arm_id`."""
    topics = topics or BagTopics()
    cfg = cfg or SyncConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bags = find_bags(list(inputs))
    start = len(list(out.glob("episode_*.hdf5")))
    rows: list[BuildRow] = []
    iterator = bags
    if progress:
        from tqdm import tqdm

        iterator = tqdm(bags, desc="build-dataset", unit="bag")
    for bag in iterator:
        meta = read_metadata(bag)
        if not include_failures and not meta.get("success", True):
            rows.append(BuildRow(str(bag), "skipped", reason="marked unsuccessful (use --include-failures)"))
            continue
        bag_topics = topics
        if arm_id_from_bag and meta.get("arm_id") and meta["arm_id"] != topics.arm_id:
            bag_topics = replace(topics, arm_id=meta["arm_id"])
        target = out / f"episode_{start + sum(r.status == 'ok' for r in rows):04d}.hdf5"
        try:
            rows.append(convert_bag(bag, target, bag_topics, cfg, instruction))
        except BagError as exc:
            rows.append(BuildRow(str(bag), "skipped", reason=str(exc).removeprefix(f"{bag}: ")))
    return rows


def summary_table(rows: list[BuildRow]) -> str:
    lines = [
        "| bag | status | frames | duration s | instruction | gripper label | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {Path(r.bag).name} | {r.status} | {r.frames} | {r.duration_s:.1f} | {r.instruction} | "
            f"{r.gripper_label} | {r.reason} |"
        )
    ok = [r for r in rows if r.status == "ok"]
    lines.append(
        f"\n{len(ok)} episodes, {sum(r.frames for r in ok)} frames, {sum(r.duration_s for r in ok):.1f} s; "
        f"{len(rows) - len(ok)} skipped"
    )
    measured = sum(r.gripper_label == "measured" for r in ok)
    if measured:
        lines.append(
            f"WARNING: {measured} episode(s) have no {GRIPPER_COMMAND_TOPIC} and use the measured finger width as the "
            "gripper label: a policy learns to close only as far as the object and grips without force. Record "
            "with this recorder (it logs the operator's gripper commands), or run policies from such data with "
            "gripper squeeze (policy_node gripper_squeeze_m)."
        )
    return "\n".join(lines)
