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
action, /observations/images/<camera> -> observation.images.<camera> (video; `image_format="png"`: LeRobot's
`image` features, PNG bytes in the data parquet), the instruction -> the task, control_rate_hz -> fps.

Reading follows LeRobot's writer, not ours (the section "reading" below says what it lays out; the data sets in
tests/data/ were written by lerobot 0.4.4 itself): any state/action size and fps, any number of `image` and
`video` cameras, episodes spread over several data and video files, v3.x and v2.1. A LeRobot directory trains
like our HDF5 episodes: the cameras the config uses are converted once into HDF5 episodes in a cache directory
(`CCOL_CACHE`, default ~/.cache/ccol), and the trainer reads those with its one HDF5 reader.

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


def _png_cells(frames: np.ndarray) -> Any:
    """(T, H, W, 3) uint8 -> an `image` feature's column as HF datasets embeds it: struct<bytes: PNG, path>."""
    import io

    import pyarrow as pa
    from PIL import Image

    cells = []
    for i, img in enumerate(frames):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=6)  # LeRobot's level
        cells.append({"bytes": buf.getvalue(), "path": f"frame-{i:06d}.png"})
    return pa.array(cells, pa.struct([("bytes", pa.binary()), ("path", pa.string())]))


def _frame_table(
    qpos: np.ndarray,
    action: np.ndarray,
    fps: int,
    episode: int,
    start: int,
    task: int,
    images: dict[str, np.ndarray] | None = None,
) -> Any:
    """An episode's rows of data/; images: camera -> frames for `image` features (PNG in the parquet)."""
    import pyarrow as pa

    t = len(qpos)

    def vectors(x: np.ndarray) -> pa.Array:  # (T, D) -> fixed_size_list<float32>[D], as datasets' Sequence(length=D)
        x = np.ascontiguousarray(x, np.float32)
        return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])

    return pa.table(
        {
            STATE: vectors(qpos),
            ACTION: vectors(action),
            **{IMAGES + cam: _png_cells(frames) for cam, frames in (images or {}).items()},
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
    image_format: str = "video",
) -> ExportSummary:
    """Write the HDF5 episodes of `dataset_dir` as a LeRobotDataset v3.0 in `out_dir`.

    image_format: "video" (cameras as `video` features, mp4 files) or "png" (`image` features: PNG bytes in the data
    parquet, as LeRobot stores them; readable where LeRobot has no video decoder, several times larger).

    fps defaults to the episodes' control_rate_hz (which must be a whole number, as LeRobot's fps is).
    Depth streams are not exported (LeRobot v3.0 has no depth feature); a warning says so."""
    from ccol_policy.data import DatasetError, episode_files

    _check_dependencies()
    codec = codec or VideoCodec()
    if image_format not in ("video", "png"):
        raise LeRobotError(f"image format {image_format!r}: 'video' (mp4) or 'png' (PNG in the data parquet)")
    as_video = image_format == "video"
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
        dtype = "video" if as_video else "image"
        features[IMAGES + cam] = {"dtype": dtype, "shape": [h, w, 3], "names": ["height", "width", "channels"]}
    features.update(DEFAULT_FEATURES)

    tasks: list[str] = []
    rows: list[dict[str, Any]] = []
    columns: dict[str, list[np.ndarray]] = {k: [] for k in (STATE, ACTION, *DEFAULT_FEATURES)}
    image_samples: dict[str, list[np.ndarray]] = {cam: [] for cam in cameras}
    data = _ParquetRows(out)
    videos = {cam: _VideoWriter(out, IMAGES + cam, fps, codec) for cam in cameras} if as_video else {}
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
            table = _frame_table(qpos, action, fps, ep, total, task, None if as_video else images)
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
            for cam in videos:
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
    for cam in videos:
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
        "video_path": VIDEO_PATH if videos else None,
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


# --- reading: what LeRobot's writer lays out (huggingface/lerobot src/lerobot/datasets/: lerobot_dataset.py,
# utils.py; v2.1 as lerobot 0.3 wrote it) ---
#
# v3.0: meta/tasks.parquet is `pd.DataFrame({"task_index": ...}, index=tasks).to_parquet(...)`: the task strings
# are the pandas index, stored as the column that the pandas metadata's index_columns names (`__index_level_0__`
# for LeRobot's unnamed index, `task` where the index has that name). meta/episodes/chunk-*/file-*.parquet: a row
# per episode with its data file (data/chunk_index, data/file_index) and, per video camera, its mp4 file and the
# from/to timestamps of the episode in it; a writer starts a new data (video) file once one reaches
# data_files_size_in_mb (video_files_size_in_mb), so episodes are spread over files. `image` cameras are PNG bytes
# in the data parquet ({bytes, path} structs, as HF datasets embeds them); `video` cameras are looked up at
# from_timestamp + each frame's timestamp.
# v2.1: meta/tasks.jsonl and meta/episodes.jsonl, one parquet and one mp4 per episode (info's data_path and
# video_path with episode_chunk and episode_index), video timestamps from 0.

LEROBOT_EXPECTED = "a LeRobot data set (meta/info.json, meta/, data/ and videos/ as LeRobot writes them)"


def is_lerobot_dir(path: str | Path) -> bool:
    return (Path(path) / INFO_PATH).is_file()


def looks_like_lerobot(path: str | Path) -> bool:
    """Part of a LeRobot data set without its meta/info.json (an interrupted download or copy)."""
    p = Path(path)
    return (p / TASKS_PATH).is_file() or (p / "meta/tasks.jsonl").is_file() or any(p.glob("data/*/*.parquet"))


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
    if not isinstance(info.get("fps"), (int, float)) or info["fps"] <= 0:
        raise LeRobotError(f"{root / INFO_PATH}: no fps")
    return info


def camera_keys(features: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Camera name -> feature key, for every `image` or `video` feature: observation.images.<name> (a feature
    observation.<name> outside that group, such as observation.image, is the camera <name>)."""
    cams = {}
    for key, ft in features.items():
        if ft.get("dtype") in ("image", "video"):
            cams[key.removeprefix(IMAGES) if key.startswith(IMAGES) else key.removeprefix("observation.")] = key
    return cams


def _tasks(root: Path, version: str) -> dict[int, str]:
    """task_index -> task string."""
    if version == "v2.1":
        path = root / "meta/tasks.jsonl"
        if not path.is_file():
            raise LeRobotError(f"{path} is missing (a v2.1 data set lists its tasks there)")
        lines = path.read_text().splitlines()
        return {int(d["task_index"]): str(d["task"]) for d in map(json.loads, filter(None, lines))}
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = root / TASKS_PATH
    if not path.is_file():
        raise LeRobotError(f"{path} is missing (a v3 data set lists its tasks there)")
    table = pq.read_table(path)
    names = table.column_names
    pandas_meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
    index = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str) and c in names]
    strings = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if "task" in names:  # a named index ("task"), or a plain column
        column = "task"
    elif index:  # the DataFrame's index as LeRobot writes it: __index_level_0__
        column = index[0]
    elif len(strings) == 1:
        column = strings[0]
    else:
        raise LeRobotError(
            f"{path}: no task strings (LeRobot writes them as the pandas index beside task_index); columns {names}"
        )
    tasks = [str(t) for t in table[column].to_pylist()]
    if "task_index" in names:
        return dict(zip((int(i) for i in table["task_index"].to_pylist()), tasks))
    return dict(enumerate(tasks))  # LeRobot looks a task_index up by position (tasks.iloc[task_index])


def _episodes_meta(root: Path, version: str) -> dict[int, dict[str, Any]]:
    """episode_index -> its row of meta/episodes (v3; without the stats/ columns) or meta/episodes.jsonl (v2.1)."""
    if version == "v2.1":
        path = root / "meta/episodes.jsonl"
        if not path.is_file():
            return {}
        lines = path.read_text().splitlines()
        return {int(d["episode_index"]): d for d in map(json.loads, filter(None, lines))}
    import pyarrow.parquet as pq

    paths = sorted((root / "meta/episodes").glob("*/*.parquet"))
    if not paths:
        raise LeRobotError(
            f"{root}: no meta/episodes/chunk-*/file-*.parquet (a v3 data set indexes its episodes there)"
        )
    rows: dict[int, dict[str, Any]] = {}
    for path in paths:
        columns = [c for c in pq.read_schema(path).names if not c.startswith("stats/")]
        rows.update({int(r["episode_index"]): r for r in pq.read_table(path, columns=columns).to_pylist()})
    return rows


def _data_files(root: Path, info: dict[str, Any], episodes: dict[int, dict[str, Any]]) -> list[Path]:
    """The data parquet files, in order: the ones meta/episodes names (v3), else all under data/."""
    named = {
        (int(m["data/chunk_index"]), int(m["data/file_index"]))
        for m in episodes.values()
        if "data/chunk_index" in m and "data/file_index" in m
    }
    if named:
        files = [root / info["data_path"].format(chunk_index=c, file_index=f) for c, f in sorted(named)]
        missing = [str(p.relative_to(root)) for p in files if not p.is_file()]
        if missing:
            raise LeRobotError(f"{root}: data files {missing} named in meta/episodes are missing")
        return files
    files = sorted((root / "data").glob("**/*.parquet"))
    if not files:
        raise LeRobotError(f"{root}: no parquet files under data/")
    return files


def _vectors(column: Any) -> np.ndarray:
    """A state or action column (fixed-size or variable lists; a scalar for a 1-dim feature) -> (T, D) float32."""
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_fixed_size_list(column.type):
        return np.stack(column.to_numpy(zero_copy_only=False)).astype(np.float32).reshape(len(column), -1)
    return np.asarray(column.to_numpy(zero_copy_only=False), np.float32).reshape(-1, 1)


def _decode_video(path: Path, timestamps: np.ndarray, fps: float) -> np.ndarray:
    """The frames (T, H, W, 3) uint8 shown at `timestamps` (seconds in the file): decoded from the key frame before
    the first, each timestamp gets its nearest frame, as LeRobot looks frames up (within half a frame here)."""
    import av

    if not path.is_file():
        raise LeRobotError(f"video {path} is missing")
    tol = 0.5 / fps + 1e-4
    first, last = float(timestamps.min()) - tol, float(timestamps.max()) + tol
    pts: list[float] = []
    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = float(stream.time_base)
        container.seek(int(max(first, 0.0) / tb), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = frame.pts * tb
            if t < first:
                continue
            if t > last:
                break
            pts.append(t)
            frames.append(frame.to_ndarray(format="rgb24"))
    if not frames:
        raise LeRobotError(f"{path}: no frame between {first:.3f} s and {last:.3f} s")
    shown = np.asarray(pts)
    nearest = np.abs(shown[None, :] - timestamps[:, None]).argmin(axis=1)
    off = np.abs(shown[nearest] - timestamps)
    if off.max() > tol:
        t = float(timestamps[off.argmax()])
        raise LeRobotError(f"{path}: no frame at {t:.3f} s (nearest {float(shown[nearest[off.argmax()]]):.3f} s)")
    return np.stack(frames)[nearest]


def _decode_images(column: list[Any], root: Path) -> np.ndarray:
    """An `image` feature's parquet cells ({'bytes': PNG, 'path': ...}, as HF datasets embeds them; a path alone
    is a file relative to the data set) -> (T, H, W, 3) uint8."""
    import io

    from PIL import Image

    def load(cell: Any) -> np.ndarray:
        data = cell.get("bytes") if isinstance(cell, dict) else cell
        if data is None and isinstance(cell, dict) and cell.get("path"):
            data = (root / cell["path"]).read_bytes()
        if data is None:
            raise LeRobotError(f"{root}: an image cell has neither bytes nor a path")
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    return np.stack([load(c) for c in column])


def check_cameras(root: Path, info: dict[str, Any], cameras: list[str] | None) -> dict[str, str]:
    """The requested cameras (all when None) -> their feature keys; a missing one names the cameras there are."""
    have = camera_keys(info["features"])
    if cameras is None:
        return have
    missing = [c for c in cameras if c not in have]
    if missing:
        listed = ", ".join(f"{c} ({k})" for c, k in have.items()) or "none"
        hint = f"; pass --set 'vision.cameras=[{','.join(have)}]'" if have else ""
        raise LeRobotError(f"{root}: camera(s) {missing} not in this LeRobot data set; it has {listed}{hint}")
    return {c: have[c] for c in cameras}


def read_lerobot(
    root: str | Path, progress: bool = False, cameras: list[str] | None = None
) -> Iterator[tuple[int, Episode]]:
    """Yield (episode_index, Episode) for every episode of a LeRobot v3.x or v2.1 directory, in the order LeRobot
    stored them (episode index order). cameras: the camera names to decode (all when None)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    _check_dependencies()
    root = Path(root)
    info = read_info(root)
    version, fps = str(info["codebase_version"]), float(info["fps"])
    features = info["features"]
    keys = check_cameras(root, info, cameras)
    tasks = _tasks(root, version)
    episodes = _episodes_meta(root, version)
    files = _data_files(root, info, episodes) if version != "v2.1" else sorted((root / "data").glob("**/*.parquet"))
    if not files:
        raise LeRobotError(f"{root}: no parquet files under data/")
    images_in_parquet = [k for k in keys.values() if features[k]["dtype"] == "image"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=int(info.get("total_episodes", len(episodes))), desc="read LeRobot", unit="episode")
    seen: set[int] = set()
    for path in files:
        schema = pq.read_schema(path)
        want = [STATE, ACTION, "timestamp", "frame_index", "episode_index", "task_index", *images_in_parquet]
        absent = [c for c in want if c not in schema.names]
        if absent:
            raise LeRobotError(f"{path}: columns {absent} missing")
        table = pq.read_table(path, columns=want)
        ep_col = table["episode_index"]
        for ep in sorted(int(e) for e in np.unique(ep_col.to_numpy())):
            rows = table.filter(pc.equal(ep_col, ep))
            rows = rows.take(pc.sort_indices(rows["frame_index"]))
            n = rows.num_rows
            meta = episodes.get(ep)
            if version != "v2.1" and meta is None:
                raise LeRobotError(f"{root}: episode {ep} is in {path.relative_to(root)} but not in meta/episodes")
            if meta is not None and "length" in meta and int(meta["length"]) != n:
                raise LeRobotError(
                    f"{root}: episode {ep} has {n} frames in {path.relative_to(root)}, "
                    f"meta/episodes says {meta['length']}"
                )
            task_ids = np.unique(rows["task_index"].to_numpy())
            if len(task_ids) > 1:
                log.warning("%s episode %d has %d tasks; training on its first frame's", root, ep, len(task_ids))
            first = int(rows["task_index"][0].as_py())
            if first not in tasks:
                raise LeRobotError(f"{root}: episode {ep} has task_index {first}, not in the data set's tasks")
            timestamps = rows["timestamp"].to_numpy().astype(np.float64)
            images: dict[str, np.ndarray] = {}
            for cam, key in keys.items():
                if features[key]["dtype"] == "image":
                    images[cam] = _decode_images(rows[key].to_pylist(), root)
                    continue
                if version == "v2.1":
                    chunk = ep // int(info.get("chunks_size", CHUNKS_SIZE))
                    video = info["video_path"].format(episode_chunk=chunk, video_key=key, episode_index=ep)
                    offset = 0.0
                else:
                    if f"videos/{key}/chunk_index" not in meta:
                        raise LeRobotError(f"{root}: meta/episodes has no video file for {key} of episode {ep}")
                    video = info["video_path"].format(
                        video_key=key,
                        chunk_index=int(meta[f"videos/{key}/chunk_index"]),
                        file_index=int(meta[f"videos/{key}/file_index"]),
                    )
                    offset = float(meta[f"videos/{key}/from_timestamp"])
                images[cam] = _decode_video(root / video, offset + timestamps, fps)
            seen.add(ep)
            yield (
                ep,
                Episode(
                    instruction=tasks[first],
                    qpos=_vectors(rows[STATE]),
                    action=_vectors(rows[ACTION]),
                    images=images,
                ),
            )
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    unread = sorted(set(episodes) - seen)
    if unread:
        raise LeRobotError(f"{root}: episodes {unread[:10]} are in meta/episodes but have no frames under data/")


def lerobot_to_hdf5(
    root: str | Path, out_dir: str | Path, progress: bool = False, cameras: list[str] | None = None
) -> list[Path]:
    """Convert a LeRobot directory into our HDF5 episodes (episode_<index>.hdf5) in out_dir."""
    from ccol_policy.data import write_episode

    root, out = Path(root), Path(out_dir)
    info = read_info(root)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for ep, episode in read_lerobot(root, progress=progress, cameras=cameras):
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


def _fingerprint(root: Path, cameras: list[str]) -> str:
    """Identity of a conversion: the directory's path, every meta/data/video file's name, size and mtime, and the
    cameras converted."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for path in sorted(p for sub in ("meta", "data", "videos") for p in (root / sub).glob("**/*") if p.is_file()):
        st = path.stat()
        h.update(f"{path.relative_to(root)}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(f"cameras:{','.join(cameras)}".encode())
    return h.hexdigest()[:16]


def resolve_data_dirs(dirs: list[str | Path], progress: bool = False, cameras: list[str] | None = None) -> list[Path]:
    """Data set directories for the trainer: HDF5 directories as they are, each LeRobot directory replaced by its
    HDF5 conversion in the cache (made once per content and camera set; a changed data set is converted again).
    cameras: the ones the trainer uses (checked against each LeRobot data set first; only these are decoded)."""
    resolved = []
    for d in map(Path, dirs):
        if not is_lerobot_dir(d):
            if d.is_dir() and not any(d.glob("*.hdf5")) and not any(d.glob("*.h5")) and looks_like_lerobot(d):
                raise LeRobotError(f"{d}: LeRobot data without meta/info.json; expected {LEROBOT_EXPECTED}")
            resolved.append(d)
            continue
        info = read_info(d)
        keys = check_cameras(d, info, cameras)
        target = cache_root() / "lerobot" / f"{d.resolve().name}-{_fingerprint(d, sorted(keys))}"
        if not (target / ".complete").is_file():
            log.info("converting LeRobot data set %s to HDF5 episodes in %s", d, target)
            tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            lerobot_to_hdf5(d, tmp, progress=progress, cameras=list(keys))
            (tmp / ".complete").touch()
            try:
                os.replace(tmp, target)
            except OSError:  # another process finished first
                shutil.rmtree(tmp, ignore_errors=True)
        resolved.append(target)
    return resolved
