"""Bag reading and synchronisation shared by build-dataset and eval-bag, on bags made in the test."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
from bag_factory import make_bag, trajectory

from ccol_policy.bags import BagError, BagTopics, Streams, SyncConfig, read_streams, synchronise
from ccol_policy.cli import main
from ccol_policy.dataset_builder import build_dataset


def test_sqlite3_bag_from_plain_ros2_bag_record(tmp_path: Path) -> None:
    make_bag(tmp_path / "plain", storage="sqlite3", instruction=None)
    rows = build_dataset(
        [tmp_path / "plain"],
        tmp_path / "out",
        cfg=SyncConfig(control_rate_hz=10.0, image_width=32, image_height=24),
        progress=False,
    )
    assert rows[0].status == "skipped" and "no instruction" in rows[0].reason
    rows = build_dataset(
        [tmp_path / "plain"],
        tmp_path / "out",
        cfg=SyncConfig(control_rate_hz=10.0, image_width=32, image_height=24),
        instruction="lift the pen",
        progress=False,
    )
    assert rows[0].status == "ok" and rows[0].instruction == "lift the pen"
    with h5py.File(tmp_path / "out" / "episode_0000.hdf5", "r") as f:
        q = f["observations/qpos"][()]
    expected = trajectory(np.arange(len(q)) * 0.1)
    np.testing.assert_allclose(q, expected, atol=2e-3)  # interpolated onto the 10 Hz grid from the header stamps


def test_synchronisation_by_hand(tmp_path: Path) -> None:
    make_bag(tmp_path / "b", duration=2.0)
    streams = read_streams(tmp_path / "b", BagTopics(), SyncConfig())
    assert streams.instruction == "lift the pen" and len(streams.image_t) == 60
    ep = synchronise(streams, SyncConfig(control_rate_hz=20.0), "b")
    np.testing.assert_allclose(np.diff(ep.times), 0.05, atol=1e-9)
    # the image at each grid time is the newest at or before it
    img_t = streams.image_t[ep.image_index] - streams.image_t[0]
    assert (img_t <= ep.times + 1e-6).all() and (ep.times - img_t < 1 / 30 + 1e-6).all()


def test_bad_bags_are_explained(tmp_path: Path) -> None:
    make_bag(tmp_path / "nocam", with_images=False)
    with pytest.raises(BagError, match="not in the bag"):
        read_streams(tmp_path / "nocam", BagTopics(), SyncConfig())
    make_bag(tmp_path / "gap", camera_gap=(1.0, 1.6))
    with pytest.raises(BagError, match="camera gap"):
        synchronise(read_streams(tmp_path / "gap", BagTopics(), SyncConfig()), SyncConfig())
    make_bag(tmp_path / "panda", arm_id="panda")
    with pytest.raises(BagError, match="--arm-id"):
        read_streams(tmp_path / "panda", BagTopics(arm_id="fr3"), SyncConfig())
    make_bag(tmp_path / "corrupt")
    mcap = next((tmp_path / "corrupt").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(BagError, match="truncated or corrupt"):
        read_streams(tmp_path / "corrupt", BagTopics(), SyncConfig())
    (tmp_path / "notabag").mkdir()
    with pytest.raises(BagError, match="metadata.yaml"):
        read_streams(tmp_path / "notabag", BagTopics(), SyncConfig())


def test_cli_build_dataset_summary(tmp_path: Path, caplog) -> None:
    make_bag(tmp_path / "bags" / "a")
    make_bag(tmp_path / "bags" / "b", camera_gap=(1.0, 2.0))
    with caplog.at_level(logging.INFO):
        code = main(
            [
                "build-dataset",
                str(tmp_path / "bags"),
                "--out",
                str(tmp_path / "ds"),
                "--image-size",
                "32x24",
                "--no-progress",
            ]
        )
    assert code == 0
    assert "1 episodes" in caplog.text and "camera gap" in caplog.text


def test_gripper_label_is_the_command_in_force_and_old_bags_are_flagged(tmp_path: Path) -> None:
    # closed at 1.0 s, opened to 0.08 at 2.0 s; the measured width (the factory's trajectory) never reaches 0
    make_bag(tmp_path / "cmd", duration=3.0, gripper_commands=[(1.0, 0.0), (2.0, 0.08)])
    ep = synchronise(read_streams(tmp_path / "cmd", BagTopics(), SyncConfig()), SyncConfig(control_rate_hz=10.0))
    assert ep.gripper_label == "command"
    t_next = ep.times + 0.1  # the label is the command in force at the next grid step
    expected = np.where(t_next >= 2.0 - 1e-9, 0.08, 0.0)
    before = t_next < 1.0 - 1e-9
    np.testing.assert_allclose(ep.action[before, 7], np.append(ep.qpos[1:, 7], ep.qpos[-1, 7])[before])
    np.testing.assert_allclose(ep.action[~before, 7], expected[~before])
    np.testing.assert_allclose(ep.action[:-1, :7], ep.qpos[1:, :7])  # the arm label stays the next measurement
    # a bag from before commands were logged: measured width as the label, flagged in the summary
    make_bag(tmp_path / "old", duration=2.0)
    rows = build_dataset(
        [tmp_path / "old"], tmp_path / "ds", cfg=SyncConfig(10.0, image_width=8, image_height=8), progress=False
    )
    assert rows[0].gripper_label == "measured"
    from ccol_policy.dataset_builder import summary_table

    assert "WARNING: 1 episode(s) have no /ccol/gripper_command" in summary_table(rows)
    with h5py.File(tmp_path / "ds" / "episode_0000.hdf5", "r") as f:
        assert f.attrs["gripper_label"] == "measured"


def _streams(grip_t: np.ndarray, joint_t: np.ndarray | None = None) -> Streams:
    joint_t = np.arange(0.0, 3.0, 0.001) if joint_t is None else joint_t
    return Streams(
        joint_t=joint_t,
        joint_q=np.zeros((len(joint_t), 7)),
        grip_t=grip_t,
        grip_w=np.full(len(grip_t), 0.08),
        image_t=np.arange(0.0, 3.0, 1 / 30),
        depth_t=np.zeros(0),
        instruction="lift the pen",
    )


def test_state_gaps_are_judged_against_each_stream_s_rate() -> None:
    grip = np.arange(0.0, 3.0, 1 / 15)  # franka_gripper's 15 Hz
    late = np.delete(grip, 20)  # one message lost: a 0.13 s gap, normal at 15 Hz
    assert len(synchronise(_streams(late), SyncConfig()).times) > 80
    with pytest.raises(BagError, match=r"gripper state gap of 0\.40s .*max_gripper_gap_s"):
        synchronise(_streams(np.delete(grip, range(20, 25))), SyncConfig())
    joints = np.arange(0.0, 3.0, 0.001)
    with pytest.raises(BagError, match=r"joint state gap of 0\.15s .*max_joint_gap_s"):
        synchronise(_streams(grip, joints[(joints < 1.0) | (joints > 1.15)]), SyncConfig())
    no_gripper = SyncConfig(use_gripper=False)
    assert len(synchronise(_streams(np.delete(grip, range(20, 25))), no_gripper).times) > 80
