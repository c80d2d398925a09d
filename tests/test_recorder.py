"""The recorder over real DDS (fake Franka + RealSense), its bags, crash safety and the dataset builder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from ros_harness import FakeRobot, spin_for, spin_until  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ccol_policy.bags import BagTopics, SyncConfig  # noqa: E402
from ccol_policy.dataset_builder import build_dataset, summary_table  # noqa: E402
from ccol_teleop.recorder_node import RecorderNode  # noqa: E402

Q0 = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.06])
IMAGE = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


@pytest.fixture
def rig(tmp_path: Path):
    rclpy.init()
    robot = FakeRobot("fr3", Q0, IMAGE)
    robot.moving = True
    node = RecorderNode(
        {
            "output_dir": str(tmp_path / "episodes"),
            "instruction": "lift the pen",
            "arm_id": "fr3",
            "keyboard": False,
            "status_period_s": 1.0,
        }
    )
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    yield {"robot": robot, "node": node, "ex": ex, "out": tmp_path / "episodes"}
    ex.shutdown()
    node.destroy_node()
    robot.destroy_node()
    rclpy.shutdown()


def _go(rig, seconds: float = 1.5) -> None:
    rig["ex"].add_node(rig["robot"])
    spin_for(rig["ex"], seconds)


def _messages(bag: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_JAZZY)) as reader:
        for conn, ts, raw in reader.messages():
            out.setdefault(conn.topic, []).append((ts, reader.deserialize(raw, conn.msgtype)))
    return out


def test_silent_topics_refuse_to_start(rig) -> None:
    spin_for(rig["ex"], 0.3)
    ok, message = rig["node"].start()
    assert not ok and "silent" in message and "/joint_states" in message
    assert not list(rig["out"].iterdir())


def test_record_stop_and_discard(rig) -> None:
    _go(rig)
    ok, msg = rig["node"].start()
    assert ok, msg
    spin_for(rig["ex"], 1.5)
    ok, msg = rig["node"].stop()
    assert ok and "episode_0000" in msg
    bag = rig["out"] / "episode_0000"
    assert (bag / "metadata.yaml").is_file()
    meta = json.loads((bag / "episode.json").read_text())
    assert meta["instruction"] == "lift the pen" and meta["success"] and meta["arm_id"] == "fr3"
    msgs = _messages(bag)
    assert msgs["/ccol/instruction"][0][1].data == "lift the pen"
    joints = msgs["/franka/joint_states"]  # franka_ros2's 1 kHz measured joints, the default source
    images = msgs["/camera/camera/color/image_raw"]
    assert 700 < len(joints) < 2000 and 25 < len(images) < 60, (len(joints), len(images))
    assert meta["frame_counts"]["/franka/joint_states"] == len(joints)
    assert all(b[0] >= a[0] for a, b in zip(joints, joints[1:]))  # receive times increase
    assert images[0][1].encoding == "rgb8" and (images[0][1].height, images[0][1].width) == (48, 64)
    assert len(msgs["/franka_gripper/joint_states"]) > 10  # franka_gripper: 15 Hz
    # discard: nothing kept, and the index is not reused
    assert rig["node"].start()[0]
    spin_for(rig["ex"], 0.3)
    ok, msg = rig["node"].discard()
    assert ok and "episode_0001" in msg
    assert rig["node"].start()[0]
    spin_for(rig["ex"], 0.3)
    assert "episode_0002" in rig["node"].stop(False)[1]
    assert sorted(p.name for p in rig["out"].iterdir()) == ["episode_0000", "episode_0002"]
    assert not json.loads((rig["out"] / "episode_0002" / "episode.json").read_text())["success"]


def test_wrong_encoding_and_joint_names_refuse_to_start(rig) -> None:
    rig["robot"].encoding = "mono8"
    _go(rig)
    ok, message = rig["node"].start()
    assert not ok and "unsupported encoding 'mono8'" in message
    rig["robot"].encoding = "rgb8"
    rig["robot"].joint_names = [f"panda_joint{i}" for i in range(1, 8)]
    spin_for(rig["ex"], 1.0)
    ok, message = rig["node"].start()
    assert not ok and "do not match arm_id 'fr3'" in message and "encoding" not in message


def test_services_and_empty_instruction(rig) -> None:
    _go(rig)
    client = rig["robot"].create_client(Trigger, "/recorder_node/start")
    assert client.wait_for_service(timeout_sec=5)
    rig["node"].set_parameters([rclpy.parameter.Parameter("instruction", value="")])
    fut = client.call_async(Trigger.Request())
    assert spin_until(rig["ex"], fut.done, 5)
    assert not fut.result().success and "no instruction" in fut.result().message
    rig["node"].set_parameters([rclpy.parameter.Parameter("instruction", value="slide the cube")])
    fut = client.call_async(Trigger.Request())
    assert spin_until(rig["ex"], fut.done, 5)
    assert fut.result().success
    spin_for(rig["ex"], 0.3)
    stop = rig["robot"].create_client(Trigger, "/recorder_node/stop")
    fut = stop.call_async(Trigger.Request())
    assert spin_until(rig["ex"], fut.done, 5) and fut.result().success
    assert json.loads((rig["out"] / "episode_0000" / "episode.json").read_text())["instruction"] == "slide the cube"


def test_build_dataset_from_recorded_bags_skips_a_camera_gap(rig, tmp_path: Path) -> None:
    _go(rig)
    for gap in (False, True, False):
        assert rig["node"].start()[0]
        spin_for(rig["ex"], 0.4)
        if not gap:
            ok, message = rig["node"].command_gripper(True)  # logged; not sent: no franka_msgs / gripper here
            assert not ok and "logged but not sent" in message, message
        spin_for(rig["ex"], 0.4)
        if gap:
            rig["robot"].camera_alive = False
            spin_for(rig["ex"], 0.5)
            rig["robot"].camera_alive = True
        spin_for(rig["ex"], 0.8)
        assert rig["node"].stop()[0]
    cfg = SyncConfig(control_rate_hz=20.0, image_width=32, image_height=24)
    rows = build_dataset([rig["out"]], tmp_path / "dataset", BagTopics(arm_id="fr3"), cfg, progress=False)
    assert [r.status for r in rows] == ["ok", "skipped", "ok"], summary_table(rows)
    assert "camera gap" in rows[1].reason
    files = sorted((tmp_path / "dataset").glob("*.hdf5"))
    assert len(files) == 2
    with h5py.File(files[0], "r") as f:
        q, a = f["observations/qpos"][()], f["action"][()]
        img = f["observations/images/color"][()]
        assert f.attrs["instruction"] == "lift the pen" and f.attrs["control_rate_hz"] == 20.0
    assert q.shape[1] == 8 and 25 <= len(q) <= 40 and img.shape[1:] == (24, 32, 3)
    np.testing.assert_allclose(a[:-1, :7], q[1:, :7])  # the arm action is the next step's joint positions
    assert np.abs(q[:, 7] - 0.06).max() < 1e-6 and q[:, 0].std() > 1e-3  # gripper width = sum of fingers
    # the operator pressed "grasp" 0.4 s in: the gripper label is the command, the observation the measured width
    closed = a[:, 7] == 0.0
    assert closed.any() and not closed[0] and closed[-1] and np.abs(a[~closed, 7] - 0.06).max() < 1e-6
    assert 0.2 < int(np.argmax(closed)) / 20.0 < 0.7
    assert rows[0].gripper_label == "command"


def _run_recorder(out: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "recorder_node"
    return subprocess.Popen(
        [
            str(exe),
            "--ros-args",
            "-p",
            f"output_dir:={out}",
            "-p",
            "instruction:=lift the pen",
            "-p",
            "keyboard:=false",
            "-p",
            "arm_id:=fr3",
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_recorder_keeps_earlier_episodes(tmp_path: Path) -> None:
    out = tmp_path / "episodes"
    rclpy.init()
    robot = FakeRobot("fr3", Q0, IMAGE)
    robot.moving = True
    ex = SingleThreadedExecutor()
    ex.add_node(robot)
    proc = _run_recorder(out)
    try:
        start = robot.create_client(Trigger, "/recorder_node/start")
        stop = robot.create_client(Trigger, "/recorder_node/stop")
        assert spin_until(ex, lambda: start.service_is_ready(), 20), "recorder did not come up"
        spin_for(ex, 1.5)

        def call(client) -> Trigger.Response:
            fut = client.call_async(Trigger.Request())
            assert spin_until(ex, fut.done, 10)
            return fut.result()

        assert call(start).success
        spin_for(ex, 1.0)
        assert call(stop).success
        assert call(start).success
        spin_for(ex, 1.0)
        os.kill(proc.pid, signal.SIGKILL)  # power cut, OOM killer, ...
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        ex.shutdown()
        robot.destroy_node()
        rclpy.shutdown()
    assert (out / "episode_0000" / "metadata.yaml").is_file() and (out / "episode_0001.partial").is_dir()
    msgs = _messages(out / "episode_0000")
    assert len(msgs["/franka/joint_states"]) > 500
    rows = build_dataset(
        [out],
        tmp_path / "dataset",
        BagTopics(arm_id="fr3"),
        SyncConfig(control_rate_hz=20.0, image_width=32, image_height=24),
        progress=False,
    )
    assert [r.status for r in rows] == ["ok"], rows
    # the next recorder start keeps the crashed episode aside and numbers after it
    rclpy.init()
    node = RecorderNode({"output_dir": str(out), "instruction": "x", "keyboard": False})
    try:
        assert (out / "episode_0001.incomplete").is_dir() and not (out / "episode_0001.partial").exists()
        from ccol_teleop.episodes import next_index

        assert next_index(out) == 2
    finally:
        node.destroy_node()
        rclpy.shutdown()
    time.sleep(0.1)
