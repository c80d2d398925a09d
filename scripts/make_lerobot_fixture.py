"""Write the LeRobot test fixtures under tests/data/ with LeRobot's own writer (developer script, not CI).

The fixtures are LeRobotDataset v3.0 directories made by `LeRobotDataset.create` + `add_frame` + `save_episode` +
`finalize` of lerobot 0.4.4, so tests/test_lerobot.py reads what LeRobot writes rather than what our exporter writes:

    lerobot_v30_image   2 episodes at 50 fps, 14-dim state and action (ALOHA's joint names), one `image`-dtype camera
                        observation.images.top (48x64, PNG bytes inside the data parquet), a task string per episode
    lerobot_v30_video   the layout of LeRobot's ALOHA sim data sets (14-dim, 50 fps, `video` cameras in AV1 mp4) with
                        two cameras (top, left_wrist): both episodes back to back in one mp4 per camera
    lerobot_v30_split   one video camera, with the writer's file size limits set so small that each episode lands
                        in its own data parquet and mp4 (chunk-000/file-000, file-001)

The values are a function of (episode, frame) (`episode_arrays`, numpy only) so the tests can compare what they read
with what was written, without LeRobot.

Recipe (LeRobot 0.4.4 pins torch < 2.11, whose Linux wheels on PyPI are CUDA builds of several GB; here LeRobot's
code runs on the torch 2.13 CPU wheel instead, with its other dependencies as it pins them):

    python3.11 -m venv /tmp/lerobot_venv
    /tmp/lerobot_venv/bin/pip install torch==2.13.0 torchvision==0.28.0
    /tmp/lerobot_venv/bin/pip install --no-deps lerobot==0.4.4
    /tmp/lerobot_venv/bin/pip install "datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" "av>=15,<16" \
        "draccus==0.10.0" "packaging>=24.2,<26" "jsonlines>=4,<5" "deepdiff>=7.0.1,<9" "einops>=0.8,<0.9" \
        "accelerate>=1.10,<2" "diffusers>=0.27.2,<0.36" "gymnasium>=1.1.1,<2" "imageio[ffmpeg]>=2.34,<3" \
        "opencv-python-headless>=4.9,<4.13" "termcolor>=2.4,<4" "setuptools>=71,<81" pandas pyarrow pillow
    /tmp/lerobot_venv/bin/python scripts/make_lerobot_fixture.py            # rewrites tests/data/lerobot_v30_*

torchvision: PyPI's torchvision wheel is built against CUDA torch, so its compiled operators (nms, roi_align, ...)
do not load on the CPU torch and `import torchvision` stops at their fake-tensor registrations. LeRobot's dataset
code only needs torchvision's Python modules (transforms, io), so `import_torchvision` below skips those
registrations; torchvision's own Python code is what runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("make_lerobot_fixture")
FPS = 50
HEIGHT, WIDTH = 48, 64
ALOHA_MOTORS = [  # LeRobot's ALOHA data sets name the 14 joints so (left arm, then right arm)
    f"{side}_{joint}"
    for side in ("left", "right")
    for joint in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
]
# name -> (camera dtypes, [(frames, task) per episode], file size limits in MB: None = LeRobot's defaults)
FIXTURES: dict[str, tuple[dict[str, str], list[tuple[int, str]], float | None]] = {
    "lerobot_v30_image": (
        {"top": "image"},
        [(30, "insert the peg into the socket"), (24, "transfer the cube to the right arm")],
        None,
    ),
    "lerobot_v30_video": (
        {"top": "video", "left_wrist": "video"},
        [(26, "transfer the cube to the right arm"), (22, "insert the peg into the socket")],
        None,
    ),
    "lerobot_v30_split": (
        {"top": "video"},
        [(14, "insert the peg into the socket"), (12, "insert the peg into the socket")],
        1e-9,  # every episode starts a new data and video file
    ),
}


def episode_arrays(episode: int, length: int, cameras: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """(state (T, 14), action (T, 14) float32, camera -> (T, H, W, 3) uint8) of one fixture episode."""
    t = np.arange(length, dtype=np.float32)[:, None]
    j = np.arange(14, dtype=np.float32)[None, :]
    state = (np.sin(0.1 * t + 0.5 * j + episode) * 0.8).astype(np.float32)
    action = (np.sin(0.1 * (t + 1) + 0.5 * j + episode) * 0.8).astype(np.float32)
    images = {}
    for c, cam in enumerate(cameras):
        frames = np.zeros((length, HEIGHT, WIDTH, 3), np.uint8)
        frames[...] = np.array([40 + 60 * episode, 90 + 40 * c, 160], np.uint8)  # background: episode and camera
        for i in range(length):  # a 12x12 white square that moves 2 px a frame: frame i is told from i+1
            x = (2 * i) % (WIDTH - 12)
            frames[i, 18:30, x : x + 12] = 255
        images[cam] = frames
    return state, action, images


def import_torchvision() -> None:
    """Import torchvision's Python modules on a torch whose build its compiled operators do not match."""
    try:
        import torchvision

        return
    except Exception:  # any failure of the compiled part: retry without its registrations
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    import torch.library

    register_fake = torch.library.register_fake

    def skip_torchvision_ops(op, *args, **kwargs):  # noqa: ANN001
        if isinstance(op, str) and op.startswith("torchvision::"):
            return lambda fn: fn
        return register_fake(op, *args, **kwargs)

    torch.library.register_fake = skip_torchvision_ops
    try:
        import torchvision
    finally:
        torch.library.register_fake = register_fake
    log.info("torchvision %s imported without its compiled operators", torchvision.__version__)


def write_fixture(out: Path, name: str) -> Path:
    import_torchvision()
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cameras, episodes, file_mb = FIXTURES[name]
    features = {
        "observation.state": {"dtype": "float32", "shape": (14,), "names": ALOHA_MOTORS},
        "action": {"dtype": "float32", "shape": (14,), "names": ALOHA_MOTORS},
    }
    for cam, dtype in cameras.items():
        features[f"observation.images.{cam}"] = {
            "dtype": dtype,
            "shape": (HEIGHT, WIDTH, 3),
            "names": ["height", "width", "channels"],
        }
    root = out / name
    shutil.rmtree(root, ignore_errors=True)
    ds = LeRobotDataset.create(
        repo_id=f"ccol/{name}",
        fps=FPS,
        features=features,
        root=root,
        robot_type="aloha",
        use_videos=any(d == "video" for d in cameras.values()),
    )
    if file_mb is not None:
        ds.meta.update_chunk_settings(data_files_size_in_mb=file_mb, video_files_size_in_mb=file_mb)
    for ep, (length, task) in enumerate(episodes):
        state, action, images = episode_arrays(ep, length, list(cameras))
        for i in range(length):
            frame = {"observation.state": state[i], "action": action[i], "task": task}
            frame.update({f"observation.images.{cam}": images[cam][i] for cam in cameras})
            ds.add_frame(frame)
        ds.save_episode(parallel_encoding=False)
    ds.finalize()
    shutil.rmtree(root / "images", ignore_errors=True)  # the writer's temporary PNGs, if any are left
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "tests/data"), help="parent directory (default tests/data)")
    p.add_argument("--only", choices=sorted(FIXTURES), action="append", help="write only this fixture")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from importlib.metadata import version

    for name in args.only or sorted(FIXTURES):
        root = write_fixture(Path(args.out), name)
        files = sorted(p for p in root.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        info = json.loads((root / "meta/info.json").read_text())
        log.info(
            "%s: lerobot %s, codebase %s, %d files, %.0f KiB",
            root, version("lerobot"), info["codebase_version"], len(files), size / 1024,
        )  # fmt: skip
        for f in files:
            log.info("  %s  %d B", f.relative_to(root), f.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
