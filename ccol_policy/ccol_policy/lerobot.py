"""LeRobotDataset v3.0 in and out: `ccol export-lerobot` writes one, and `ccol train` reads one (v3.0 or v2.1).

The layout is the one LeRobot's own writer produces (huggingface/lerobot, `src/lerobot/datasets/`):

    meta/info.json                                  codebase_version, fps, features, totals, path templates
    meta/stats.json                                 per-feature min/max/mean/std/count/q01..q99 of the data set
    meta/tasks.parquet                              task (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        one row per episode: length, tasks, data and video file
                                                    indices, from/to timestamps, stats/<feature>/<stat>
    data/chunk-000/file-000.parquet                 one row per frame: observation.state, action, timestamp,
                                                    frame_index, episode_index, index, task_index
    videos/observation.images.<camera>/chunk-000/file-000.mp4    all episodes' frames back to back

Our episodes map onto it as: /observations/qpos -> observation.state (joints + gripper width), /action ->
action, /observations/images/<camera> -> observation.images.<camera> (video), the instruction -> the task,
control_rate_hz -> fps. Reading maps back the same way, so a LeRobot directory trains like our HDF5 episodes:
it is converted once into HDF5 episodes in a cache directory (`CCOL_CACHE`, default ~/.cache/ccol), and the
trainer reads those with its one HDF5 reader.

No torch and no rclpy here; pyarrow and PyAV are imported where they are used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_FILE_MB = 100  # LeRobot's defaults: a new file once one reaches this size
VIDEO_FILE_MB = 200
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)

STATE, ACTION, IMAGES = "observation.state", "action", "observation.images."
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {  # every LeRobot frame carries these
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


class LeRobotError(ValueError):
    """A data set that cannot be exported or read; the message says what to fix."""


def _check_dependencies() -> None:
    import importlib.util

    missing = [m for m in ("pyarrow", "av") if importlib.util.find_spec(m) is None]
    if missing:
        raise LeRobotError(f"LeRobot data sets need {' and '.join(missing)}: pip install pyarrow av")


@dataclass
class VideoCodec:
    """How camera streams are encoded. LeRobot records with libsvtav1, yuv420p, a key frame every 2 frames (fast
    random access) and crf 30; h264 decodes everywhere."""

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int = 2
    crf: int = 30


@dataclass
class ExportSummary:
    out_dir: Path
    episodes: int
    frames: int
    fps: int
    tasks: list[str]
    cameras: list[str]
    skipped_depth: bool = False


@dataclass
class Episode:
    """One episode as the trainer sees it (arrays in robot units, images uint8 (T, H, W, 3))."""

    instruction: str
    qpos: np.ndarray  # (T, S) float32
    action: np.ndarray  # (T, A) float32
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> (T, H, W, 3) uint8


# --- statistics (LeRobot's compute_stats: per dimension; images per channel in [0, 1], shape (3, 1, 1)) ---


def feature_stats(x: np.ndarray, image: bool = False) -> dict[str, np.ndarray]:
    """x: (N,) or (N, D) values, or (N, H, W, 3) uint8 frames -> min/max/mean/std/count/q01..q99."""
    n_frames = len(x)
    if image:
        x = x.reshape(-1, 3).astype(np.float64) / 255.0  # (N*H*W, 3)
    x = np.asarray(x, np.float64)
    out = {
        "min": x.min(0),
        "max": x.max(0),
        "mean": x.mean(0),
        "std": x.std(0),
        "count": np.array([len(x)]),
    }
    for q, v in zip(QUANTILES, np.quantile(x, QUANTILES, axis=0)):
        out[f"q{int(round(q * 100)):02d}"] = v
    if image:  # count is the number of frames, as in LeRobot
        out = {k: np.array([n_frames]) if k == "count" else v.reshape(3, 1, 1) for k, v in out.items()}
    else:
        out = {k: np.atleast_1d(v) for k, v in out.items()}
    return out


def _stats_json(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {key: {k: v.tolist() for k, v in s.items()} for key, s in stats.items()}


# --- writing ---


def _state_names(arm_id: str, dim: int) -> list[str]:
    if dim in (7, 8):
        return [f"{arm_id}_joint{i}" for i in range(1, 8)] + ["gripper_width"][: dim - 7]
    return [f"joint{i}" for i in range(dim)]


def _next_file(chunk: int, file: int) -> tuple[int, int]:
    return (chunk + 1, 0) if file == CHUNKS_SIZE - 1 else (chunk, file + 1)


class _VideoWriter:
    """One camera's mp4 files: episodes are appended back to back; a new file once one reaches VIDEO_FILE_MB."""

    def __init__(self, root: Path, key: str, fps: int, codec: VideoCodec) -> None:
        self.root, self.key, self.fps, self.codec = root, key, fps, codec
        self.chunk, self.file, self.frames = 0, 0, 0
        self._out = self._stream = None

    @property
    def path(self) -> Path:
        return self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.chunk, file_index=self.file)

    def _open(self, height: int, width: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self.path), "w")
        options = {"g": str(self.codec.g), "crf": str(self.codec.crf)}
        self._stream = self._out.add_stream(self.codec.vcodec, rate=self.fps, options=options)
        self._stream.pix_fmt = self.codec.pix_fmt
        self._stream.width, self._stream.height = width, height
        self.frames = 0

    def close(self) -> None:
        if self._out is not None:
            for packet in self._stream.encode():
                self._out.mux(packet)
            self._out.close()
            self._out = self._stream = None

    def add_episode(self, frames: np.ndarray) -> dict[str, Any]:
        """frames (T, H, W, 3) uint8 -> this episode's columns of meta/episodes."""
        import av

        if frames.shape[1] % 2 or frames.shape[2] % 2:
            raise LeRobotError(f"{self.key}: {self.codec.pix_fmt} video needs an even image size, got {frames.shape}")
        if self._out is not None and self.path.stat().st_size >= VIDEO_FILE_MB * 2**20:
            self.close()
            self.chunk, self.file = _next_file(self.chunk, self.file)
        if self._out is None:
            self._open(frames.shape[1], frames.shape[2])
        start = self.frames
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self.frames  # time base 1/fps: frame i shows at i / fps, as LeRobot's decoder looks it up
            for packet in self._stream.encode(frame):
                self._out.mux(packet)
            self.frames += 1
        return {
            f"videos/{self.key}/chunk_index": self.chunk,
            f"videos/{self.key}/file_index": self.file,
            f"videos/{self.key}/from_timestamp": start / self.fps,
            f"videos/{self.key}/to_timestamp": self.frames / self.fps,
        }


class _ParquetRows:
    """Frame rows of data/: one parquet file until it reaches DATA_FILE_MB (estimated from the arrow buffers)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.chunk, self.file, self.bytes = 0, 0, 0
        self._writer = None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def add(self, table: Any) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self._writer is not None and self.bytes >= DATA_FILE_MB * 2**20:
            self.close()
            self.chunk, self.file = _next_file(self.chunk, self.file)
        if self._writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            self.bytes = 0
        self._writer.write_table(table)
        self.bytes += table.nbytes
        return self.chunk, self.file


def _frame_table(qpos: np.ndarray, action: np.ndarray, fps: int, episode: int, start: int, task: int) -> Any:
    import pyarrow as pa

    t = len(qpos)

    def vectors(x: np.ndarray) -> pa.Array:  # (T, D) -> fixed_size_list<float32>[D], as datasets' Sequence(length=D)
        x = np.ascontiguousarray(x, np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])

    return pa.table(
        {
            STATE: vectors(qpos),
            ACTION: vectors(action),
            "timestamp": pa.array(np.arange(t, dtype=np.float32) / np.float32(fps)),
            "frame_index": pa.array(np.arange(t, dtype=np.int64)),
            "episode_index": pa.array(np.full(t, episode, np.int64)),
            "index": pa.array(np.arange(start, start + t, dtype=np.int64)),
            "task_index": pa.array(np.full(t, task, np.int64)),
        }
    )


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame(task_index, index=task): the pandas metadata makes
    `pd.read_parquet` restore `task` as the index, which LeRobot's task lookup relies on."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": None}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }  # fmt: skip
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def _read_hdf5(path: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray, dict[str, np.ndarray], bool]:
    with h5py.File(path, "r") as f:
        if "observations/qpos" not in f or "action" not in f:
            raise LeRobotError(f"{path}: not an episode file (needs /observations/qpos and /action)")
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        images = {c: f[f"observations/images/{c}"][()] for c in f.get("observations/images", {})}
        return attrs, f["observations/qpos"][()], f["action"][()], images, "observations/depth" in f


def export_lerobot(
    dataset_dir: str | Path,
    out_dir: str | Path,
    fps: int | None = None,
    default_instruction: str | None = None,
    codec: VideoCodec | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ExportSummary:
    """Write the HDF5 episodes of `dataset_dir` as a LeRobotDataset v3.0 in `out_dir`.

    fps defaults to the episodes' control_rate_hz (which must be a whole number, as LeRobot's fps is).
    Depth streams are not exported (LeRobot v3.0 has no depth feature); a warning says so."""
    from ccol_policy.data import DatasetError, episode_files

    _check_dependencies()
    codec = codec or VideoCodec()
    out = Path(out_dir)
    try:
        files = episode_files([dataset_dir])
    except DatasetError as exc:
        raise LeRobotError(str(exc)) from exc
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise LeRobotError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    attrs0, q0, a0, images0, _ = _read_hdf5(files[0])
    rate = fps or attrs0.get("control_rate_hz")
    if rate is None:
        raise LeRobotError(f"{files[0]} has no control_rate_hz; pass the recording rate (--fps 30)")
    if abs(rate - round(rate)) > 1e-6:
        raise LeRobotError(f"control rate {rate} Hz is not a whole number; LeRobot's fps is an integer (--fps)")
    fps = int(round(rate))
    arm_id = str(attrs0.get("arm_id", "fr3"))
    cameras = sorted(images0)
    features: dict[str, dict[str, Any]] = {
        STATE: {"dtype": "float32", "shape": [q0.shape[1]], "names": _state_names(arm_id, q0.shape[1])},
        ACTION: {"dtype": "float32", "shape": [a0.shape[1]], "names": _state_names(arm_id, a0.shape[1])},
    }
    for cam in cameras:
        h, w = images0[cam].shape[1:3]
        features[IMAGES + cam] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"]}
    features.update(DEFAULT_FEATURES)

    tasks: list[str] = []
    rows: list[dict[str, Any]] = []
    columns: dict[str, list[np.ndarray]] = {k: [] for k in (STATE, ACTION, *DEFAULT_FEATURES)}
    image_samples: dict[str, list[np.ndarray]] = {cam: [] for cam in cameras}
    data = _ParquetRows(out)
    videos = {cam: _VideoWriter(out, IMAGES + cam, fps, codec) for cam in cameras}
    skipped_depth = False
    iterator: Iterable[Path] = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="export-lerobot", unit="episode")
    total = 0
    try:
        for ep, path in enumerate(iterator):
            attrs, qpos, action, images, has_depth = _read_hdf5(path)
            skipped_depth |= has_depth
            where = f"{path.name} (episode {ep})"
            if qpos.shape[1:] != q0.shape[1:] or action.shape[1:] != a0.shape[1:]:
                raise LeRobotError(
                    f"{where}: state/action dims {qpos.shape[1]}/{action.shape[1]} differ from the first episode's "
                    f"{q0.shape[1]}/{a0.shape[1]}; export one robot's episodes at a time"
                )
            if sorted(images) != cameras or any(images[c].shape[1:] != images0[c].shape[1:] for c in cameras):
                raise LeRobotError(f"{where}: cameras or image sizes differ from the first episode's {cameras}")
            if attrs.get("control_rate_hz", rate) != attrs0.get("control_rate_hz", rate):
                raise LeRobotError(f"{where}: recorded at {attrs['control_rate_hz']} Hz, the first episode at {rate}")
            instruction = str(attrs.get("instruction") or default_instruction or "")
            if not instruction:
                raise LeRobotError(f"{where}: no instruction; pass --instruction for episodes that carry none")
            if instruction not in tasks:
                tasks.append(instruction)
            task = tasks.index(instruction)
            table = _frame_table(qpos, action, fps, ep, total, task)
            chunk, file = data.add(table)
            row: dict[str, Any] = {
                "episode_index": ep,
                "tasks": [instruction],
                "length": len(qpos),
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": total,
                "dataset_to_index": total + len(qpos),
            }
            for cam in cameras:
                row.update(videos[cam].add_episode(images[cam]))
            ep_stats = {k: feature_stats(np.stack(table[k].to_numpy(zero_copy_only=False))) for k in (STATE, ACTION)}
            for k in DEFAULT_FEATURES:
                ep_stats[k] = feature_stats(table[k].to_numpy())
            for cam in cameras:
                sample = images[cam][_sample_indices(len(qpos))]  # as LeRobot: a spread of frames, not all
                ep_stats[IMAGES + cam] = feature_stats(sample, image=True)
                image_samples[cam].append(sample)
            for k, s in ep_stats.items():
                for name, v in s.items():
                    row[f"stats/{k}/{name}"] = v.tolist()
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
            rows.append(row)
            for k in columns:
                columns[k].append(np.stack(table[k].to_numpy(zero_copy_only=False)))
            total += len(qpos)
    finally:
        data.close()
        for v in videos.values():
            v.close()

    import pyarrow as pa
    import pyarrow.parquet as pq

    (out / "meta/episodes/chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), out / EPISODES_PATH.format(chunk_index=0, file_index=0))
    _write_tasks(out / TASKS_PATH, tasks)
    stats = {k: feature_stats(np.concatenate(v)) for k, v in columns.items()}
    for cam in cameras:
        stats[IMAGES + cam] = feature_stats(np.concatenate(image_samples[cam]), image=True)
    (out / STATS_PATH).write_text(json.dumps(_stats_json(stats), indent=2))
    for cam in cameras:
        features[IMAGES + cam]["info"] = _video_info(videos[cam].root / VIDEO_PATH.format(
            video_key=IMAGES + cam, chunk_index=0, file_index=0))  # fmt: skip
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": arm_id,
        "total_episodes": len(rows),
        "total_frames": total,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILE_MB,
        "video_files_size_in_mb": VIDEO_FILE_MB,
        "fps": fps,
        "splits": {"train": f"0:{len(rows)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cameras else None,
        "features": features,
    }
    (out / INFO_PATH).write_text(json.dumps(info, indent=4))
    if skipped_depth:
        log.warning("depth streams were not exported: LeRobotDataset v3.0 has no depth feature")
    return ExportSummary(out, len(rows), total, fps, tasks, cameras, skipped_depth)


def _sample_indices(n: int) -> np.ndarray:
    """LeRobot's compute_stats.sample_indices: about n**0.75 frames (100 to 10000) evenly spread."""
    k = min(n, max(100, min(int(n**0.75), 10000)))
    return np.round(np.linspace(0, n - 1, k)).astype(int)


def _video_info(path: Path) -> dict[str, Any]:
    """The `info` of a video feature, as LeRobot's get_video_info probes it."""
    import av

    with av.open(str(path)) as f:
        s = f.streams.video[0]
        return {
            "video.height": s.height,
            "video.width": s.width,
            "video.codec": s.codec_context.codec.canonical_name,
            "video.pix_fmt": s.pix_fmt,
            "video.is_depth_map": False,
            "video.fps": int(s.base_rate),
            "video.channels": 3,
            "has_audio": False,
        }


# --- reading (v3.0, and v2.1: one parquet and one mp4 per episode, tasks and episodes in jsonl) ---


def is_lerobot_dir(path: str | Path) -> bool:
    return (Path(path) / INFO_PATH).is_file()


def read_info(root: str | Path) -> dict[str, Any]:
    """meta/info.json, checked for what the trainer needs."""
    root = Path(root)
    try:
        info = json.loads((root / INFO_PATH).read_text())
    except (OSError, ValueError) as exc:
        raise LeRobotError(f"{root / INFO_PATH}: cannot read ({exc})") from exc
    version = str(info.get("codebase_version", ""))
    if not (version.startswith("v3.") or version == "v2.1"):
        raise LeRobotError(
            f"{root}: LeRobot codebase_version {version!r}; ccol reads v3.x and v2.1 (convert older data sets with "
            "LeRobot's convert_dataset_v20_to_v21 / convert_dataset_v21_to_v30 scripts)"
        )
    features = info.get("features", {})
    missing = [k for k in (STATE, ACTION) if k not in features]
    if missing:
        raise LeRobotError(f"{root}: features {missing} missing; ccol trains on {STATE} and {ACTION}")
    return info


def _tasks(root: Path, version: str) -> dict[int, str]:
    if version == "v2.1":
        lines = (root / "meta/tasks.jsonl").read_text().splitlines()
        return {int(d["task_index"]): str(d["task"]) for d in map(json.loads, filter(None, lines))}
    import pyarrow.parquet as pq

    table = pq.read_table(root / TASKS_PATH)
    if "task" in table.column_names:  # the pandas index, stored as a column
        return dict(zip(table["task_index"].to_pylist(), map(str, table["task"].to_pylist())))
    raise LeRobotError(f"{root / TASKS_PATH}: no 'task' column")


def _episodes_meta(root: Path, version: str) -> dict[int, dict[str, Any]]:
    if version == "v2.1":
        lines = (root / "meta/episodes.jsonl").read_text().splitlines()
        return {int(d["episode_index"]): d for d in map(json.loads, filter(None, lines))}
    import pyarrow.parquet as pq

    rows: dict[int, dict[str, Any]] = {}
    for path in sorted((root / "meta/episodes").glob("*/*.parquet")):
        table = pq.read_table(path)
        table = table.select([c for c in table.column_names if not c.startswith("stats/")])
        rows.update({int(r["episode_index"]): r for r in table.to_pylist()})
    return rows


def _decode_video(path: Path, start_s: float, n: int, fps: int) -> np.ndarray:
    """n frames (n, H, W, 3) uint8 from the one showing at start_s (the nearest key frame before, then forward)."""
    import av

    if not path.is_file():
        raise LeRobotError(f"video {path} is missing")
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        container.seek(int(start_s / tb), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts * tb < start_s - 0.5 / fps:
                continue
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    if len(frames) < n:
        raise LeRobotError(f"{path}: {len(frames)} frames from {start_s:.3f} s, the episode has {n}")
    return np.stack(frames)


def _decode_images(column: list[Any]) -> np.ndarray:
    """An `image` feature's parquet cells ({'bytes': PNG, 'path': ...}) -> (T, H, W, 3) uint8."""
    import io

    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in column])


def read_lerobot(root: str | Path, progress: bool = False) -> Iterator[tuple[int, Episode]]:
    """Yield (episode_index, Episode) for every episode of a LeRobot v3.x or v2.1 directory, in index order."""
    import pyarrow.parquet as pq

    _check_dependencies()
    root = Path(root)
    info = read_info(root)
    version, fps = str(info["codebase_version"]), int(info["fps"])
    features = info["features"]
    cameras = [k for k, f in features.items() if k.startswith(IMAGES) and f["dtype"] in ("video", "image")]
    tasks = _tasks(root, version)
    episodes = _episodes_meta(root, version)
    files = sorted((root / "data").glob("**/*.parquet"))
    if not files:
        raise LeRobotError(f"{root}: no parquet files under data/")
    columns = [STATE, ACTION, "timestamp", "frame_index", "episode_index", "task_index"]
    columns += [k for k in cameras if features[k]["dtype"] == "image"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(info.get("total_episodes", len(episodes))), desc="read LeRobot", unit="episode")
    for path in files:
        table = pq.read_table(path, columns=columns)
        ep_col = table["episode_index"].to_numpy()
        for ep in np.unique(ep_col):
            rows = table.filter(ep_col == ep)
            order = np.argsort(rows["frame_index"].to_numpy())
            rows = rows.take(order)
            task_ids = np.unique(rows["task_index"].to_numpy())
            if len(task_ids) > 1:
                log.warning("%s episode %d has %d tasks; training on the first", root, ep, len(task_ids))
            first = int(rows["task_index"][0].as_py())
            if first not in tasks:
                raise LeRobotError(f"{root}: episode {ep} has task_index {first}, not in the data set's tasks")
            n = rows.num_rows
            images: dict[str, np.ndarray] = {}
            for key in cameras:
                cam = key.removeprefix(IMAGES)
                if features[key]["dtype"] == "image":
                    images[cam] = _decode_images(rows[key].to_pylist())
                    continue
                t0 = float(rows["timestamp"][0].as_py())
                if version == "v2.1":
                    chunk = int(ep) // int(info.get("chunks_size", CHUNKS_SIZE))
                    video = info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=int(ep))
                    start = t0
                else:
                    meta = episodes.get(int(ep))
                    if meta is None:
                        raise LeRobotError(f"{root}: episode {ep} is in data/ but not in meta/episodes")
                    video = info["video_path"].format(
                        video_key=key,
                        chunk_index=meta[f"videos/{key}/chunk_index"],
                        file_index=meta[f"videos/{key}/file_index"],
                    )
                    start = float(meta[f"videos/{key}/from_timestamp"]) + t0
                images[cam] = _decode_video(root / video, start, n, fps)
            yield (
                int(ep),
                Episode(
                    instruction=tasks[first],
                    qpos=np.stack(rows[STATE].to_numpy(zero_copy_only=False)).astype(np.float32),
                    action=np.stack(rows[ACTION].to_numpy(zero_copy_only=False)).astype(np.float32),
                    images=images,
                ),
            )
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()


def lerobot_to_hdf5(root: str | Path, out_dir: str | Path, progress: bool = False) -> list[Path]:
    """Convert a LeRobot directory into our HDF5 episodes (episode_<index>.hdf5) in out_dir."""
    from ccol_policy.data import write_episode

    root, out = Path(root), Path(out_dir)
    info = read_info(root)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ep, episode in read_lerobot(root, progress=progress):
        paths.append(
            write_episode(
                out / f"episode_{ep:06d}.hdf5",
                episode.qpos,
                episode.action,
                episode.images,
                episode.instruction,
                arm_id=str(info.get("robot_type") or ""),
                control_rate_hz=float(info["fps"]),
                source=f"{root}#episode_index={ep}",
            )
        )
    return paths


def cache_root() -> Path:
    return Path(os.environ.get("CCOL_CACHE", Path.home() / ".cache" / "ccol"))


def _fingerprint(root: Path) -> str:
    """Identity of a LeRobot directory's contents: its path and every meta/data/video file's name, size, mtime."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for path in sorted(p for sub in ("meta", "data", "videos") for p in (root / sub).glob("**/*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(root)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def resolve_data_dirs(dirs: list[str | Path], progress: bool = False) -> list[Path]:
    """Data set directories for the trainer: HDF5 directories as they are, each LeRobot directory replaced by its
    HDF5 conversion in the cache (made once per content; a changed data set is converted again)."""
    resolved = []
    for d in map(Path, dirs):
        if not is_lerobot_dir(d):
            resolved.append(d)
            continue
        target = cache_root() / "lerobot" / f"{d.resolve().name}-{_fingerprint(d)}"
        if not (target / ".complete").is_file():
            log.info("converting LeRobot data set %s to HDF5 episodes in %s", d, target)
            tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            lerobot_to_hdf5(d, tmp, progress=progress)
            (tmp / ".complete").touch()
            try:
                os.replace(tmp, target)
            except OSError:  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
        resolved.append(target)
    return resolved
