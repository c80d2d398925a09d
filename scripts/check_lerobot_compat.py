"""Read a `ccol export-lerobot` directory with LeRobot's own dataset code (lerobot-dataset 0.4.4, codebase v3.0).

LeRobot itself (lerobot >= 0.5, lerobot-dataset >= 0.5) needs Python >= 3.12; lerobot-dataset 0.4.4 (a standalone
copy of LeRobot 0.4.4's `datasets/` package, imported as `ledataset`) installs on 3.11 but leaves torch and
torchvision to the user. Recipe (not CI: tests/test_lerobot.py runs this only when LEROBOT_PYTHON is set):

    python3 -m venv /tmp/lrvenv && /tmp/lrvenv/bin/pip install lerobot-dataset==0.4.4
    echo /path/to/.venv/lib/python3.11/site-packages > /tmp/lrvenv/lib/python3.11/site-packages/zz_ccol.pth  # torch
    /tmp/lrvenv/bin/python scripts/check_lerobot_compat.py runs/lerobot_export

torchvision: LeRobot 0.4.4 decodes video through `torchvision.io.VideoReader` with its PyAV backend, which
torchvision >= 0.24 no longer has, and PyPI's torchvision wheels do not load on a CPU-only torch. When
torchvision cannot be imported, this script puts a stand-in in its place: `io.VideoReader` re-implemented on
PyAV as torchvision's PyAV backend did it (seek to the key frame before, yield {"data", "pts"} in seconds).
Everything else (info.json, tasks, episodes and data parquet through HF datasets, stats, the timestamp ->
frame lookup with its 1e-4 s tolerance) is LeRobot's code. The last line says whether the directory passed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
from pathlib import Path

log = logging.getLogger("check_lerobot_compat")


def _torchvision_stand_in() -> None:
    try:
        import torchvision  # noqa: F401

        return
    except Exception:  # missing, or a CUDA build that does not load on a CPU torch: use the stand-in
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    import av
    import torch

    class VideoReader:
        """torchvision.io.VideoReader(path, "video") with the PyAV backend."""

        def __init__(self, path: str, stream: str = "video") -> None:
            self.container = av.open(path)
            self._stream = self.container.streams.video[0]
            self._frames = None

        def seek(self, ts: float, keyframes_only: bool = False) -> VideoReader:
            tb = self._stream.time_base
            self.container.seek(int(ts / tb), stream=self._stream, backward=True, any_frame=not keyframes_only)
            self._frames = self.container.decode(self._stream)
            return self

        def __iter__(self) -> VideoReader:
            if self._frames is None:
                self._frames = self.container.decode(self._stream)
            return self

        def __next__(self) -> dict:
            frame = next(self._frames)
            data = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)  # (3, H, W) uint8
            return {"data": data, "pts": float(frame.pts * self._stream.time_base)}

    import importlib.machinery

    tv = types.ModuleType("torchvision")
    tv.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    tv.io = types.ModuleType("torchvision.io")
    tv.io.VideoReader = VideoReader
    tv.transforms = types.ModuleType("torchvision.transforms")  # only used for `image` features (PNG in parquet)
    tv.set_video_backend = lambda backend: None
    sys.modules.update({"torchvision": tv, "torchvision.io": tv.io, "torchvision.transforms": tv.transforms})
    log.info("torchvision stand-in: PyAV VideoReader (see the module docstring)")


def check(root: Path) -> bool:
    _torchvision_stand_in()
    from importlib.metadata import version

    try:
        from ledataset.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

        package = "lerobot-dataset"
    except ImportError:  # LeRobot itself (the environment scripts/make_lerobot_fixture.py describes)
        from lerobot.datasets.lerobot_dataset import CODEBASE_VERSION, LeRobotDataset

        package = "lerobot"
    log.info(f"{package} {version(package)} (codebase {CODEBASE_VERSION}) reading {root}")
    ds = LeRobotDataset("local/ccol_export", root=root, video_backend="pyav")
    meta = ds.meta
    log.info(f"episodes {meta.total_episodes}, frames {ds.num_frames}, fps {ds.fps}, tasks {list(meta.tasks.index)}")
    log.info(f"features {sorted(meta.features)}; camera keys {meta.camera_keys}")
    ok = ds.num_frames == meta.total_frames and len(meta.episodes) == meta.total_episodes
    for ep in range(meta.total_episodes):
        start, end = meta.episodes[ep]["dataset_from_index"], meta.episodes[ep]["dataset_to_index"]
        for i in (start, (start + end) // 2, end - 1):  # first, middle and last frame: decoded through the video
            item = ds[i]
            good = int(item["episode_index"]) == ep and item["task"] in meta.tasks.index
            good &= all(item[k].shape[0] == 3 for k in meta.camera_keys)
            log.info(
                f"  episode {ep} frame {int(item['frame_index'])}: task {item['task']!r}, "
                f"state {tuple(item['observation.state'].shape)}, action {tuple(item['action'].shape)}, "
                + ", ".join(f"{k} {tuple(item[k].shape)}" for k in meta.camera_keys)
                + ("" if good else "  <- WRONG")
            )
            ok &= good
    # as ACT/Diffusion train on it: action chunks by delta_timestamps, padded past the episode end
    chunk = {"action": [i / ds.fps for i in range(10)]}
    chunked = LeRobotDataset("local/ccol_export", root=root, video_backend="pyav", delta_timestamps=chunk)
    last = chunked[meta.episodes[0]["dataset_to_index"] - 1]
    good = tuple(last["action"].shape) == (10, meta.features["action"]["shape"][0]) and bool(last["action_is_pad"][1])
    log.info("action chunk at an episode's last frame: %s, padded %s", tuple(last["action"].shape), good)
    ok &= good
    stats_keys = sorted(meta.stats)
    log.info(f"stats for {stats_keys}")
    ok &= {"observation.state", "action"} <= set(stats_keys)
    log.info("PASS: LeRobot reads the export" if ok else "FAIL: see the lines above")
    return ok


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="a LeRobotDataset v3.0 directory (ccol export-lerobot --out)")
    return 0 if check(parser.parse_args().root) else 1


if __name__ == "__main__":
    sys.exit(main())
