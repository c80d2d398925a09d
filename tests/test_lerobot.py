"""LeRobot datasets in and out: `ccol export-lerobot` writes LeRobotDataset v3.0 as LeRobot's sources define it,
reading it back reproduces the episodes, and `ccol train` trains on a LeRobot directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

from ccol_policy.cli import main  # noqa: E402
from ccol_policy.lerobot import (  # noqa: E402
    LeRobotError,
    export_lerobot,
    read_lerobot,
    resolve_data_dirs,
)

from conftest import TINY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# huggingface/lerobot src/lerobot/datasets/utils.py (DatasetInfo, DEFAULT_*_PATH) and utils/constants.py
LEROBOT_INFO_FIELDS = {
    "codebase_version",
    "fps",
    "features",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "data_path",
    "video_path",
    "robot_type",
    "splits",
}
LEROBOT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
LEROBOT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
LEROBOT_DEFAULT_FEATURES = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
LEROBOT_STATS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}


@pytest.fixture(scope="module")
def episodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 synthetic episodes (one per task) at 20 Hz with 32x32 colour images."""
    from ccol_policy.synthetic import make_dataset

    d = tmp_path_factory.mktemp("hdf5")
    make_dataset(d, episodes_per_task=1, seed=0, image_size=32)
    return d


@pytest.fixture(scope="module")
def exported(episodes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lerobot") / "ds"
    export_lerobot(episodes_dir, out, progress=False)
    return out


def _h5(episodes_dir: Path) -> list[dict]:
    eps = []
    for p in sorted(episodes_dir.glob("*.hdf5")):
        with h5py.File(p, "r") as f:
            eps.append(
                {
                    "qpos": f["observations/qpos"][()],
                    "action": f["action"][()],
                    "color": f["observations/images/color"][()],
                    "instruction": f.attrs["instruction"],
                    "rate": f.attrs["control_rate_hz"],
                }
            )
    return eps


def test_export_writes_v3_info_with_episodes_frames_and_fps(exported: Path, episodes_dir: Path) -> None:
    eps = _h5(episodes_dir)
    info = json.loads((exported / "meta/info.json").read_text())
    assert info["codebase_version"].startswith("v3.")
    assert info["total_episodes"] == 3
    assert info["total_frames"] == sum(len(e["qpos"]) for e in eps)
    assert info["fps"] == 20 == eps[0]["rate"]
    assert info["total_tasks"] == 3
    data = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    assert data.num_rows == info["total_frames"]
    assert (exported / "videos/observation.images.color/chunk-000/file-000.mp4").is_file()


def test_round_trip_reproduces_values_lengths_and_instructions(exported: Path, episodes_dir: Path) -> None:
    eps = _h5(episodes_dir)
    back = list(read_lerobot(exported))
    assert [i for i, _ in back] == [0, 1, 2]
    for e, (_, r) in zip(eps, back):
        assert r.instruction == e["instruction"]
        assert len(r.qpos) == len(e["qpos"]) == len(r.images["color"])
        np.testing.assert_array_equal(r.qpos, e["qpos"].astype(np.float32))  # exact: parquet float32
        np.testing.assert_array_equal(r.action, e["action"].astype(np.float32))
        err = np.abs(r.images["color"].astype(int) - e["color"].astype(int))  # video: lossy (AV1, yuv420p)
        assert err.mean() < 8, err.mean()
        # frame t is frame t (not a neighbour): it is closer to its own original than to the next one
        neighbour = np.abs(r.images["color"][:-1].astype(int) - e["color"][1:].astype(int)).mean()
        assert err[:-1].mean() < neighbour


def test_export_follows_lerobot_v3_format_field_by_field(exported: Path) -> None:
    info = json.loads((exported / "meta/info.json").read_text())
    assert set(info) == LEROBOT_INFO_FIELDS
    assert info["data_path"] == LEROBOT_DATA_PATH and info["video_path"] == LEROBOT_VIDEO_PATH
    assert info["chunks_size"] == 1000 and info["splits"] == {"train": "0:3"}
    feats = info["features"]
    for key, dtype in LEROBOT_DEFAULT_FEATURES.items():
        assert feats[key] == {"dtype": dtype, "shape": [1], "names": None}
    state, action, video = feats["observation.state"], feats["action"], feats["observation.images.color"]
    assert state["dtype"] == action["dtype"] == "float32" and state["shape"] == action["shape"] == [8]
    assert state["names"] == [f"fr3_joint{i}" for i in range(1, 8)] + ["gripper_width"]
    assert video["dtype"] == "video" and video["shape"] == [32, 32, 3]
    assert video["names"] == ["height", "width", "channels"]
    assert video["info"]["video.fps"] == 20 and video["info"]["video.codec"] == "av1"
    assert video["info"]["video.pix_fmt"] == "yuv420p"

    # data parquet: the arrow types HF datasets gives LeRobot's features (Sequence(length=8) is a fixed-size list)
    schema = pq.read_schema(exported / "data/chunk-000/file-000.parquet")
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 8)
    assert schema.field("action").type == pa.list_(pa.float32(), 8)
    assert schema.field("timestamp").type == pa.float32()
    for key in ("frame_index", "episode_index", "index", "task_index"):
        assert schema.field(key).type == pa.int64()
    assert "observation.images.color" not in schema.names  # videos live in mp4 only
    data = pq.read_table(exported / "data/chunk-000/file-000.parquet").to_pydict()
    assert data["index"] == list(range(len(data["index"])))

    # tasks: pandas DataFrame(task_index, index=task), as LeRobotDatasetMetadata.save_episode_tasks writes it
    tasks = pq.read_table(exported / "meta/tasks.parquet")
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    assert tasks["task_index"].to_pylist() == [0, 1, 2]

    # episodes: one row per episode with its data and video slices and its stats
    episodes = pq.read_table(exported / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in episodes] == [0, 1, 2]
    start = 0
    for e in episodes:
        assert e["tasks"] == [tasks["task"][e["episode_index"]].as_py()]
        assert (e["dataset_from_index"], e["dataset_to_index"]) == (start, start + e["length"])
        assert e["data/chunk_index"] == e["data/file_index"] == 0
        assert e["meta/episodes/chunk_index"] == e["meta/episodes/file_index"] == 0
        key = "videos/observation.images.color"
        assert e[f"{key}/chunk_index"] == e[f"{key}/file_index"] == 0
        assert e[f"{key}/from_timestamp"] == pytest.approx(start / 20)
        assert e[f"{key}/to_timestamp"] == pytest.approx((start + e["length"]) / 20)
        assert np.array(e["stats/observation.images.color/mean"]).shape == (3, 1, 1)
        assert e["stats/action/count"] == [e["length"]]
        for feature in ("observation.state", "action", "timestamp", "observation.images.color"):
            assert {k.split("/")[-1] for k in e if k.startswith(f"stats/{feature}/")} == LEROBOT_STATS
        start += e["length"]

    # the video: frame i of the file is shown at i / fps (LeRobot looks frames up by from_timestamp + timestamp)
    with av.open(str(exported / "videos/observation.images.color/chunk-000/file-000.mp4")) as f:
        s = f.streams.video[0]
        pts = sorted(float(fr.pts * s.time_base) for fr in f.decode(s))
    np.testing.assert_allclose(pts, np.arange(start) / 20, atol=1e-6)

    stats = json.loads((exported / "meta/stats.json").read_text())
    assert set(stats) == set(feats)
    assert set(stats["action"]) == LEROBOT_STATS and len(stats["action"]["mean"]) == 8
    assert stats["action"]["count"] == [start] and np.array(stats["observation.images.color"]["std"]).shape == (3, 1, 1)


def test_ccol_train_runs_on_an_exported_directory(exported: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CCOL_CACHE", str(tmp_path / "cache"))
    cfg = {**TINY, "train": {**TINY["train"], "steps": 4, "eval_every": 2, "save_every": 2, "log_every": 2}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    rc = main(["train", str(exported), "--out", str(tmp_path / "run"), "--config", str(tmp_path / "tiny.yaml")])
    assert rc == 0
    meta = json.loads((tmp_path / "run/best/meta.json").read_text())
    assert sorted(meta["instructions"]) == ["lift the pen", "place the cubes", "slide the cube"]
    assert meta["control_rate_hz"] == 20
    # converted once: a second resolve finds the cached episodes
    first = resolve_data_dirs([exported])
    assert first == resolve_data_dirs([exported]) and len(list(first[0].glob("*.hdf5"))) == 3


def test_bad_inputs_say_what_to_fix(episodes_dir: Path, exported: Path, tmp_path: Path) -> None:
    with pytest.raises(LeRobotError, match="not empty"):
        export_lerobot(episodes_dir, exported, progress=False)
    with pytest.raises(LeRobotError, match="no episodes"):
        export_lerobot(tmp_path, tmp_path / "out", progress=False)
    info = json.loads((exported / "meta/info.json").read_text())
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    (old / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.0"}))
    with pytest.raises(LeRobotError, match="v3.x and v2.1"):
        list(read_lerobot(old))


def test_simulator_bags_export_through_the_cli(tmp_path: Path) -> None:
    """The bar: a 3-episode simulator data set (episode bags, built first) exports with the right counts and fps."""
    pytest.importorskip("mujoco")
    from ccol_sim.recording import record_demonstrations

    rows = record_demonstrations(tmp_path / "bags", 1, seed=0, image_size=(64, 48), progress=False)
    assert len(rows) == 3
    out = tmp_path / "lerobot"
    argv = ["export-lerobot", str(tmp_path / "bags"), "--out", str(out), "--arm-id", "panda", "--no-progress"]
    assert main([*argv, "--image-size", "64x48"]) == 0
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3 and info["fps"] == 30
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    assert info["total_frames"] == sum(episodes["length"]) == pq.read_metadata(out / info["data_path"].format(
        chunk_index=0, file_index=0)).num_rows  # fmt: skip
    assert info["features"]["observation.images.color"]["shape"] == [48, 64, 3]
    assert [len(e.qpos) for _, e in read_lerobot(out)] == episodes["length"]


@pytest.mark.skipif(
    not os.environ.get("LEROBOT_PYTHON"),
    reason="LeRobot's own reader (lerobot-dataset 0.4.4 + torch) lives in its own venv, not CI's: set LEROBOT_PYTHON "
    "to its python to run scripts/check_lerobot_compat.py on an export",
)
def test_lerobot_reads_the_export(exported: Path) -> None:
    script = ROOT / "scripts/check_lerobot_compat.py"
    proc = subprocess.run([os.environ["LEROBOT_PYTHON"], str(script), str(exported)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout + proc.stderr


def test_v21_directories_read_like_v3(exported: Path, tmp_path: Path) -> None:
    """LeRobot v2.1: one parquet and one mp4 per episode, tasks and episodes in jsonl; rebuilt here from the v3."""
    from ccol_policy.lerobot import VideoCodec, _VideoWriter

    v3 = list(read_lerobot(exported))
    info = json.loads((exported / "meta/info.json").read_text())
    root = tmp_path / "v21"
    info.update(
        codebase_version="v2.1",
        data_path="data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        video_path="videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
    )
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    tasks = pq.read_table(exported / "meta/tasks.parquet").to_pylist()
    (root / "meta/tasks.jsonl").write_text("\n".join(json.dumps(t) for t in tasks))
    data = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    lines = []
    for ep, episode in v3:
        rows = data.filter(pa.compute.equal(data["episode_index"], ep))
        path = root / info["data_path"].format(episode_chunk=0, episode_index=ep)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, path)
        writer = _VideoWriter(tmp_path / f"enc{ep}", "observation.images.color", 20, VideoCodec("h264", crf=10))
        writer.add_episode(episode.images["color"])
        writer.close()
        video = root / info["video_path"].format(episode_chunk=0, video_key=writer.key, episode_index=ep)
        video.parent.mkdir(parents=True, exist_ok=True)
        writer.path.rename(video)
        lines.append(json.dumps({"episode_index": ep, "tasks": [episode.instruction], "length": len(episode.qpos)}))
    (root / "meta/episodes.jsonl").write_text("\n".join(lines))

    for (ep, a), (ep2, b) in zip(v3, read_lerobot(root)):
        assert ep == ep2 and a.instruction == b.instruction
        np.testing.assert_array_equal(a.qpos, b.qpos)
        np.testing.assert_array_equal(a.action, b.action)
        assert np.abs(a.images["color"].astype(int) - b.images["color"].astype(int)).mean() < 4


# --- data sets written by LeRobot itself (tests/data/lerobot_v30_*, made by scripts/make_lerobot_fixture.py with
# lerobot 0.4.4's LeRobotDataset.create / add_frame / save_episode / finalize) ---

DATA = ROOT / "tests/data"


def _fixture_script():
    """scripts/make_lerobot_fixture.py as a module: its FIXTURES and episode_arrays (numpy only, no LeRobot)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_lerobot_fixture", ROOT / "scripts/make_lerobot_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["lerobot_v30_image", "lerobot_v30_video", "lerobot_v30_split"])
def test_lerobot_written_data_sets_read_back_what_was_written(name: str) -> None:
    fx = _fixture_script()
    cameras, episodes, _ = fx.FIXTURES[name]
    root = DATA / name
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 50
    # LeRobot's layout, not ours: the task strings are the parquet's pandas index (__index_level_0__)
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert "task" not in tasks.column_names
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]

    back = list(read_lerobot(root))
    assert [ep for ep, _ in back] == list(range(len(episodes)))
    for (ep, got), (length, task) in zip(back, episodes):
        state, action, images = fx.episode_arrays(ep, length, list(cameras))
        assert got.instruction == task
        np.testing.assert_array_equal(got.qpos, state)  # float32 in parquet: exact
        np.testing.assert_array_equal(got.action, action)
        assert sorted(got.images) == sorted(cameras)
        for cam, dtype in cameras.items():
            assert got.images[cam].shape == images[cam].shape == (length, 48, 64, 3)
            if dtype == "image":  # PNG in the data parquet: lossless
                np.testing.assert_array_equal(got.images[cam], images[cam])
                continue
            err = np.abs(got.images[cam].astype(int) - images[cam].astype(int)).mean()
            neighbour = np.abs(got.images[cam][:-1].astype(int) - images[cam][1:].astype(int)).mean()
            assert err < 4 and err < neighbour, (err, neighbour)  # AV1 is lossy; frame t is frame t


def test_lerobot_written_layouts_cover_shared_and_split_files() -> None:
    """The video fixture keeps both episodes in one mp4 per camera (the second from a later timestamp); the split
    fixture has each episode in its own data parquet and mp4."""
    video = pq.read_table(DATA / "lerobot_v30_video/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    key = "videos/observation.images.top"
    assert [e[f"{key}/file_index"] for e in video] == [0, 0] and video[1][f"{key}/from_timestamp"] > 0
    split = pq.read_table(DATA / "lerobot_v30_split/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["data/file_index"] for e in split] == [e[f"{key}/file_index"] for e in split] == [0, 1]
    assert json.loads((DATA / "lerobot_v30_split/meta/info.json").read_text())["total_tasks"] == 1


def test_ccol_train_on_a_lerobot_written_data_set(tmp_path: Path, monkeypatch) -> None:
    """The bar: `ccol train` converts LeRobot's own 14-dim, 50 fps data set with an `image` camera and trains, the
    instructions taken from LeRobot's tasks.parquet."""
    monkeypatch.setenv("CCOL_CACHE", str(tmp_path / "cache"))
    cfg = {**TINY, "train": {**TINY["train"], "steps": 4, "eval_every": 2, "save_every": 2, "log_every": 2}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    argv = ["train", str(DATA / "lerobot_v30_image"), "--out", str(tmp_path / "run"), "--no-progress"]
    argv += ["--config", str(tmp_path / "tiny.yaml"), "--set", "vision.cameras=[top]"]
    assert main([*argv, "--set", "model.state_dim=14", "--set", "model.action_dim=14"]) == 0
    meta = json.loads((tmp_path / "run/best/meta.json").read_text())
    assert sorted(meta["instructions"]) == ["insert the peg into the socket", "transfer the cube to the right arm"]
    assert meta["control_rate_hz"] == 50
    assert len(meta["validation"]["val_l1_per_joint"]) == 14


def test_camera_names_that_do_not_match_list_the_data_sets_cameras(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("CCOL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(LeRobotError, match=r"\['color'\] not in .* it has top \(observation.images.top\)"):
        resolve_data_dirs([DATA / "lerobot_v30_image"], cameras=["color"])
    with pytest.raises(LeRobotError, match=r"it has top \(observation.images.top\), left_wrist"):
        list(read_lerobot(DATA / "lerobot_v30_video", cameras=["top", "wrist"]))
    assert not (tmp_path / "cache").exists()  # checked before anything is converted
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    argv = ["train", str(DATA / "lerobot_v30_image"), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--config", str(tmp_path / "tiny.yaml")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0] and "vision.cameras=[top]" in errors[0]


def test_a_directory_of_no_known_kind_gets_one_line_saying_what_was_expected(tmp_path: Path, caplog) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not data")
    bags = tmp_path / "bags"
    (bags / "episode_0").mkdir(parents=True)
    (bags / "episode_0/metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    partial = tmp_path / "partial"  # a LeRobot data set without meta/info.json (an interrupted download)
    shutil.copytree(DATA / "lerobot_v30_image", partial)
    (partial / "meta/info.json").unlink()
    expected = {
        other: "expected HDF5 episodes (*.hdf5), a LeRobot data set (meta/info.json)",
        bags: "rosbag2 bags; build episodes from them first (ccol build-dataset",
        partial: "LeRobot data without meta/info.json",
    }
    for d, text in expected.items():
        caplog.clear()
        argv = ["train", str(d), "--out", str(tmp_path / "run"), "--config", str(tmp_path / "tiny.yaml")]
        assert main([*argv, "--no-progress"]) == 2
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "\n" not in errors[0] and text in errors[0], errors


def test_task_strings_are_found_however_pandas_stored_the_index(tmp_path: Path) -> None:
    """tasks.parquet from a DataFrame indexed by the task: LeRobot's unnamed index (__index_level_0__), an index
    named otherwise (the pandas metadata names the column), or a plain `task` column."""
    from ccol_policy.lerobot import _tasks

    tasks = ["lift the pen", "place the cubes"]
    for column in ("__index_level_0__", "prompt", "task"):
        meta = {"index_columns": [column] if column != "task" else [{"kind": "range"}], "columns": []}
        table = pa.table({"task_index": [1, 0], column: tasks[::-1]})
        root = tmp_path / column
        (root / "meta").mkdir(parents=True)
        pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(meta)}), root / "meta/tasks.parquet")
        assert _tasks(root, "v3.0") == {0: "lift the pen", 1: "place the cubes"}
    (tmp_path / "bad/meta").mkdir(parents=True)
    pq.write_table(pa.table({"task_index": [0], "n": [1]}), tmp_path / "bad/meta/tasks.parquet")
    with pytest.raises(LeRobotError, match="no task strings"):
        _tasks(tmp_path / "bad", "v3.0")


@pytest.mark.skipif(
    not os.environ.get("LEROBOT_PYTHON"),
    reason="LeRobot's writer (lerobot 0.4.4) lives in its own venv, not CI's: set LEROBOT_PYTHON to its python to "
    "write the fixtures again with scripts/make_lerobot_fixture.py (its docstring has the setup)",
)
def test_lerobot_writes_the_fixtures_again_as_committed(tmp_path: Path) -> None:
    script = ROOT / "scripts/make_lerobot_fixture.py"
    proc = subprocess.run([os.environ["LEROBOT_PYTHON"], str(script), "--out", str(tmp_path)], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    for name in _fixture_script().FIXTURES:
        for (ep, a), (ep2, b) in zip(read_lerobot(DATA / name), read_lerobot(tmp_path / name), strict=True):
            assert ep == ep2 and a.instruction == b.instruction
            np.testing.assert_array_equal(a.qpos, b.qpos)
            np.testing.assert_array_equal(a.action, b.action)


def test_png_export_stores_images_in_the_parquet_as_lerobot_does(episodes_dir: Path, tmp_path: Path) -> None:
    """--images png: `image` features (PNG bytes in the data parquet, {bytes, path} structs as HF datasets embeds
    them, no mp4), for a LeRobot without a video decoder; reading back is exact, images included."""
    out = tmp_path / "png"
    argv = ["export-lerobot", str(episodes_dir), "--out", str(out), "--images", "png", "--no-progress"]
    assert main(argv) == 0
    info = json.loads((out / "meta/info.json").read_text())
    color = info["features"]["observation.images.color"]
    assert color["dtype"] == "image" and color["shape"] == [32, 32, 3] and "info" not in color
    assert info["video_path"] is None and not (out / "videos").exists()
    field = pq.read_schema(out / "data/chunk-000/file-000.parquet").field("observation.images.color")
    assert field.type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet")
    assert not [c for c in episodes.column_names if c.startswith("videos/")]
    assert "stats/observation.images.color/mean" in episodes.column_names
    for e, (_, r) in zip(_h5(episodes_dir), read_lerobot(out), strict=True):
        assert r.instruction == e["instruction"]
        np.testing.assert_array_equal(r.qpos, e["qpos"].astype(np.float32))
        np.testing.assert_array_equal(r.action, e["action"].astype(np.float32))
        np.testing.assert_array_equal(r.images["color"], e["color"])


@pytest.mark.skipif(
    not os.environ.get("CCOL_CHECK_LEROBOT_TRAIN"),
    reason="LeRobot's trainer needs LeRobot's own environment (lerobot 0.4.4, which the script builds in /tmp) and "
    "minutes of CPU: set CCOL_CHECK_LEROBOT_TRAIN=1 to run scripts/check_lerobot_train.sh",
)
def test_lerobot_trains_act_on_the_export_and_loads_its_checkpoint(tmp_path: Path) -> None:
    import sys

    env = {**os.environ, "WORK": str(tmp_path / "work"), "CCOL_PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/check_lerobot_train.sh")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "png export: PASS" in proc.stdout
