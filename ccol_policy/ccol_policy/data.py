"""Episodes on disk and the training dataset.

One HDF5 file per episode, readable as an ACT/AWE episode:

    /observations/qpos              (T, state_dim) float32   joint positions + gripper width
    /observations/images/<camera>   (T, H, W, 3)   uint8     RGB
    /observations/depth/<camera>    (T, H, W)      uint16    millimetres (optional)
    /action                         (T, action_dim) float32  commanded future joint positions + gripper width
    attrs: instruction, arm_id, control_rate_hz, sim, success, source

ACT/ALOHA episodes (no `instruction` attribute) are read with `DataConfig.default_instruction`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

STATS_FILE = "norm_stats.json"
MIN_STD = 1e-2  # joints that never move are not blown up by normalisation


class DatasetError(ValueError):
    """A data set that cannot be trained on; the message says what to fix."""


def write_episode(
    path: str | Path,
    qpos: np.ndarray,
    action: np.ndarray,
    images: dict[str, np.ndarray],
    instruction: str,
    depth: dict[str, np.ndarray] | None = None,
    **attrs: Any,
) -> Path:
    """Write one episode atomically (temporary file, then rename): a crash never leaves a half-written episode."""
    path = Path(path)
    t = len(qpos)
    if len(action) != t or any(len(v) != t for v in images.values()):
        raise ValueError(f"episode {path.name}: qpos, action and images must have the same length ({t})")
    if not instruction.strip():
        raise ValueError(f"episode {path.name}: instruction is empty")
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("observations/qpos", data=np.asarray(qpos, np.float32))
        f.create_dataset("action", data=np.asarray(action, np.float32))
        for cam, frames in images.items():
            f.create_dataset(
                f"observations/images/{cam}", data=np.asarray(frames, np.uint8), chunks=(1, *frames.shape[1:])
            )
        for cam, frames in (depth or {}).items():
            f.create_dataset(
                f"observations/depth/{cam}", data=np.asarray(frames, np.uint16), chunks=(1, *frames.shape[1:])
            )
        f.attrs["instruction"] = instruction
        for key, value in attrs.items():
            f.attrs[key] = value
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class EpisodeInfo:
    path: Path
    length: int
    instruction: str
    state_dim: int
    action_dim: int
    cameras: tuple[str, ...]
    has_depth: bool
    control_rate_hz: float | None = None


def episode_files(dirs: list[str | Path]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise DatasetError(f"dataset directory {d} does not exist")
        files.extend(sorted(d.glob("*.hdf5")) + sorted(d.glob("*.h5")))
    if not files:
        where = ", ".join(str(d) for d in dirs)
        if any((p / "metadata.yaml").is_file() for d in dirs for p in (Path(d), *Path(d).iterdir())):
            raise DatasetError(
                f"no episodes in {where}: it holds rosbag2 bags; build episodes from them first "
                f"(ccol build-dataset {where} --out DIR)"
            )
        raise DatasetError(
            f"no episodes in {where}: expected HDF5 episodes (*.hdf5), a LeRobot data set (meta/info.json) "
            "or, for build-dataset and export-lerobot, a directory of rosbag2 episode bags"
        )
    return files


def read_episode_info(path: Path, default_instruction: str | None) -> EpisodeInfo:
    try:
        with h5py.File(path, "r") as f:
            if "observations/qpos" not in f or "action" not in f:
                raise DatasetError(f"{path}: not an episode file (needs /observations/qpos and /action)")
            instruction = f.attrs.get("instruction", default_instruction)
            if isinstance(instruction, bytes):
                instruction = instruction.decode()
            if not instruction:
                raise DatasetError(
                    f"{path}: episode has no instruction; pass one for all such episodes "
                    "(`--set data.default_instruction='lift the pen'`)"
                )
            cams = tuple(sorted(f["observations/images"].keys())) if "observations/images" in f else ()
            return EpisodeInfo(
                path=path,
                length=int(f["observations/qpos"].shape[0]),
                instruction=str(instruction),
                state_dim=int(f["observations/qpos"].shape[1]),
                action_dim=int(f["action"].shape[1]),
                cameras=cams,
                has_depth="observations/depth" in f,
                control_rate_hz=float(f.attrs["control_rate_hz"]) if "control_rate_hz" in f.attrs else None,
            )
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read HDF5 file ({exc}); the file is truncated or corrupt") from exc


def scan_episodes(
    dirs: list[str | Path], default_instruction: str | None = None, cameras: list[str] | None = None
) -> list[EpisodeInfo]:
    """Read and cross-check the metadata of every episode; raise DatasetError before any training happens."""
    infos = [read_episode_info(p, default_instruction) for p in episode_files(dirs)]
    for attr in ("state_dim", "action_dim"):
        values = {getattr(i, attr) for i in infos}
        if len(values) > 1:
            detail = ", ".join(f"{i.path.name}: {getattr(i, attr)}" for i in infos[:8])
            raise DatasetError(f"episodes have different {attr} {sorted(values)} ({detail}); train on one robot")
    if cameras:
        for info in infos:
            missing = [c for c in cameras if c not in info.cameras]
            if missing:
                raise DatasetError(f"{info.path}: camera(s) {missing} missing; it has {list(info.cameras)}")
    rates = {i.control_rate_hz for i in infos if i.control_rate_hz}
    if len(rates) > 1:
        raise DatasetError(f"episodes were recorded at different control rates {sorted(rates)} Hz; rebuild them at one")
    short = [i.path.name for i in infos if i.length < 2]
    if short:
        raise DatasetError(f"episodes shorter than 2 steps: {short}")
    return infos


@dataclass
class NormStats:
    """Mean/std of proprioception and actions, computed once per data set and stored with every checkpoint."""

    qpos_mean: np.ndarray
    qpos_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    dataset_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "qpos_mean": self.qpos_mean.tolist(),
            "qpos_std": self.qpos_std.tolist(),
            "action_mean": self.action_mean.tolist(),
            "action_std": self.action_std.tolist(),
            "dataset_hash": self.dataset_hash,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NormStats:
        arr = {k: np.asarray(d[k], np.float32) for k in ("qpos_mean", "qpos_std", "action_mean", "action_std")}
        return cls(**arr, dataset_hash=d.get("dataset_hash", ""))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def check_dims(self, state_dim: int, action_dim: int) -> None:
        if len(self.qpos_mean) != state_dim or len(self.action_mean) != action_dim:
            raise DatasetError(
                f"normalisation statistics are for state_dim={len(self.qpos_mean)}, action_dim="
                f"{len(self.action_mean)} but the config has model.state_dim={state_dim}, "
                f"model.action_dim={action_dim}; fix the config or delete the stale {STATS_FILE}"
            )

    def normalise_qpos(self, q: np.ndarray) -> np.ndarray:
        return (q - self.qpos_mean) / self.qpos_std

    def normalise_action(self, a: np.ndarray) -> np.ndarray:
        return (a - self.action_mean) / self.action_std

    def denormalise_action(self, a: np.ndarray) -> np.ndarray:
        return a * self.action_std + self.action_mean


def dataset_hash(infos: list[EpisodeInfo]) -> str:
    """Identity of a set of episode files (names, sizes, modification times)."""
    h = hashlib.sha256()
    for info in sorted(infos, key=lambda i: str(i.path)):
        st = info.path.stat()
        h.update(f"{info.path.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def compute_norm_stats(infos: list[EpisodeInfo]) -> NormStats:
    qpos, action = [], []
    for info in infos:
        with h5py.File(info.path, "r") as f:
            qpos.append(f["observations/qpos"][()])
            action.append(f["action"][()])
    q, a = np.concatenate(qpos), np.concatenate(action)
    if not (np.isfinite(q).all() and np.isfinite(a).all()):
        bad = [
            i.path.name for i, x, y in zip(infos, qpos, action) if not (np.isfinite(x).all() and np.isfinite(y).all())
        ]
        raise DatasetError(f"episodes contain NaN or inf joint values: {bad}; rebuild or delete them")
    return NormStats(
        qpos_mean=q.mean(0).astype(np.float32),
        qpos_std=np.maximum(q.std(0), MIN_STD).astype(np.float32),
        action_mean=a.mean(0).astype(np.float32),
        action_std=np.maximum(a.std(0), MIN_STD).astype(np.float32),
        dataset_hash=dataset_hash(infos),
    )


def load_or_compute_norm_stats(infos: list[EpisodeInfo], cache_dir: Path) -> NormStats:
    """Statistics are computed once and cached in the (first) data set directory, keyed by the data set hash."""
    path = cache_dir / STATS_FILE
    current = dataset_hash(infos)
    if path.is_file():
        try:
            stats = NormStats.load(path)
            if stats.dataset_hash == current:
                return stats
        except (ValueError, KeyError):
            log.warning("ignoring unreadable %s", path)
    stats = compute_norm_stats(infos)
    try:
        stats.save(path)
    except OSError:
        log.warning("cannot cache normalisation statistics in %s (read-only?)", cache_dir)
    return stats


def split_episodes(
    infos: list[EpisodeInfo], val_fraction: float, seed: int
) -> tuple[list[EpisodeInfo], list[EpisodeInfo]]:
    """Split by episode with a fixed seed: val_fraction of the episodes (at least one) are held out."""
    if val_fraction <= 0 or len(infos) < 2:
        return list(infos), []
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(infos))
    n_val = max(1, int(round(val_fraction * len(infos))))
    val = [infos[i] for i in order[:n_val]]
    train = [infos[i] for i in order[n_val:]]
    return train, val


class EpisodeDataset(Dataset):
    """Samples (images, qpos, instruction, action chunk, padding mask) at every time step of every episode."""

    def __init__(
        self,
        infos: list[EpisodeInfo],
        stats: NormStats,
        chunk_size: int,
        cameras: list[str],
        instructions: list[str],
        use_depth: bool = False,
        cache_images: bool = False,
        latent_offsets: list[int] | tuple[int, ...] = (),
        rest_after_end: bool = True,
    ) -> None:
        self.infos = infos
        self.rest_after_end = rest_after_end
        self.latent_offsets = tuple(latent_offsets)
        self.stats = stats
        self.k = chunk_size
        self.cameras = cameras
        self.use_depth = use_depth
        self.instruction_ids = {text: i for i, text in enumerate(instructions)}
        self.index = [(e, t) for e, info in enumerate(infos) for t in range(info.length)]
        self._qpos: list[np.ndarray] = []
        self._action: list[np.ndarray] = []
        self._images: list[dict[str, np.ndarray]] | None = [] if cache_images else None
        for info in infos:
            with h5py.File(info.path, "r") as f:
                self._qpos.append(stats.normalise_qpos(f["observations/qpos"][()]).astype(np.float32))
                self._action.append(stats.normalise_action(f["action"][()]).astype(np.float32))
                if self._images is not None:
                    self._images.append({c: f[f"observations/images/{c}"][()] for c in cameras})
        self._files: dict[int, h5py.File] = {}  # opened lazily, per worker process

    def __len__(self) -> int:
        return len(self.index)

    def start_indices(self, steps: int, stride: int = 5) -> list[int]:
        """Sample indices of every episode's first `steps` steps, every `stride`-th (the reach from the start)."""
        return [i for i, (_, t) in enumerate(self.index) if t < steps and t % stride == 0]

    def _file(self, e: int) -> h5py.File:
        if e not in self._files:
            self._files[e] = h5py.File(self.infos[e].path, "r")
        return self._files[e]

    def _chunk(self, e: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Action chunk (k, A) from step t and its padding mask (k,): past the episode's end the last action is
        repeated, masked out of the loss unless the episode ends at rest (`DataConfig.rest_after_end`)."""
        actions = self._action[e][t : t + self.k]
        n = len(actions)
        is_pad = np.zeros(self.k, dtype=bool)
        if n < self.k:
            actions = np.concatenate([actions, np.repeat(actions[-1:], self.k - n, 0)])
            is_pad[n:] = not self.rest_after_end
        return actions, is_pad

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        e, t = self.index[i]
        actions, is_pad = self._chunk(e, t)
        if self._images is not None:
            frames = [self._images[e][c][t] for c in self.cameras]
        else:
            f = self._file(e)
            frames = [f[f"observations/images/{c}"][t] for c in self.cameras]
        sample = {
            "images": torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),  # (n_cam, 3, H, W)
            "qpos": torch.from_numpy(self._qpos[e][t]),
            "actions": torch.from_numpy(actions),
            "is_pad": torch.from_numpy(is_pad),
            "instruction": torch.tensor(self.instruction_ids[self.infos[e].instruction]),
        }
        if self.latent_offsets:  # proprioception at the ODE grid's later times (E_disc), clamped to the episode
            later = [min(t + o, len(self._qpos[e]) - 1) for o in self.latent_offsets]
            chunks = [self._chunk(e, s) for s in later]
            sample["future_qpos"] = torch.from_numpy(self._qpos[e][later])  # (T-1, S)
            sample["future_actions"] = torch.from_numpy(np.stack([c[0] for c in chunks]))  # (T-1, k, A)
            sample["future_is_pad"] = torch.from_numpy(np.stack([c[1] for c in chunks]))  # (T-1, k)
        if self.use_depth:
            f = self._file(e)
            depth = [f[f"observations/depth/{c}"][t].astype(np.float32) / 1000.0 for c in self.cameras]
            sample["depth"] = torch.from_numpy(np.stack(depth)).unsqueeze(1)  # (n_cam, 1, H, W) metres
        return sample

    def __getstate__(self) -> dict[str, Any]:  # h5py handles do not cross process boundaries
        state = self.__dict__.copy()
        state["_files"] = {}
        return state
