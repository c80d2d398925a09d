"""The simulated world: scripted teachers, rendering, the ROS sim node, recording through the real recorder and a
closed-loop smoke run through the real policy node."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco", reason="mujoco not installed")

from ccol_sim.env import TASK_OBJECT, TASKS, PandaTable
from ccol_sim.sim_eval import attention_summary, rollout, wilson_interval
from ccol_sim.teacher import demonstrate


@pytest.fixture(scope="module")
def env() -> PandaTable:
    e = PandaTable(render_size=(96, 72))
    yield e
    e.close()


@pytest.mark.parametrize("task", TASKS)
def test_scripted_teacher_succeeds_on_most_seeds(env: PandaTable, task: str) -> None:
    results = []
    for seed in range(100, 110):
        env.reset(seed)
        results.append(demonstrate(env, task, seed))
    assert sum(results) >= 8, results


def test_scene_is_seeded_and_rendered(env: PandaTable) -> None:
    a = env.reset(3)
    img = env.render()
    b = env.reset(3)
    np.testing.assert_array_equal(a.red, b.red)
    np.testing.assert_array_equal(env.render(), img)
    assert img.shape == (72, 96, 3) and img.dtype == np.uint8
    red = (img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] < 80)
    assert red.sum() > 3  # the red cube is in view
    assert env.reset(4).red.tolist() != a.red.tolist()
    assert not any(env.success(t) for t in TASKS)  # nothing is solved at reset
    depth = env.render_depth()
    assert depth.shape == (72, 96) and 0.3 < np.median(depth) < 2.0


def test_paper_layout_keeps_every_object_near_its_usual_place(env: PandaTable) -> None:
    from ccol_sim.layouts import HOME, PAPER_SHIFT

    seen = []
    for seed in range(20):
        lay = env.reset(seed, layout="paper")
        for spot, (x, y) in zip((lay.pen[:2], lay.red, lay.blue, lay.zone), HOME.values(), strict=True):
            assert abs(spot[0] - x) <= PAPER_SHIFT and abs(spot[1] - y) <= PAPER_SHIFT
        assert abs(lay.pen[2]) <= 0.3
        seen.append(lay.red.copy())
    assert np.std(np.array(seen), axis=0).min() > 0.01  # randomised, not fixed
    wide = env.reset(0, layout="wide")
    assert not np.allclose(wide.red, env.reset(0, layout="paper").red)
    with pytest.raises(ValueError, match="layouts"):
        env.reset(0, layout="nowhere")


def test_went_for_its_object_tells_the_instructed_object_from_another(env: PandaTable) -> None:
    from ccol_policy.control import ClosedLoopExecutor
    from ccol_sim.sim_eval import run_episode, went_for_its_object
    from ccol_sim.teacher import plan

    seed = 105
    for task in TASKS:
        env.reset(seed)
        targets = plan(env, task, np.random.default_rng(seed), 30.0)  # the teacher's motion for this task
        padded = np.concatenate([targets, np.repeat(targets[-1:], 60, 0)])
        executor = ClosedLoopExecutor("panda", 1 / 30, 30, 8)
        for told in TASKS:  # the same motion judged under each instruction
            r = run_episode(
                env,
                lambda s, i, q, p=padded: p[s : s + 30],
                executor,
                told,
                seed,
                30.0,
                len(targets),
                render=False,
            )
            assert went_for_its_object(r) == (TASK_OBJECT[told] == TASK_OBJECT[task]), (task, told, r.closest)
        assert r.closest[TASK_OBJECT[task]] < 0.06  # the hand reached its object


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.490, abs=1e-3) and hi == pytest.approx(0.943, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0


def test_closed_loop_rollout_uses_the_policy(env: PandaTable, synthetic_dir: Path, tmp_path: Path) -> None:
    from ccol_policy.policy import CCoLPolicy
    from ccol_policy.training import train

    from conftest import tiny_config

    train(tiny_config(**{"train.steps": 5}), [synthetic_dir], tmp_path, progress=False)
    policy = CCoLPolicy.from_checkpoint(tmp_path / "best", device="cpu")
    r = rollout(env, policy, "lift the pen", seed=5, rate_hz=20.0, max_seconds=1.0, record_video=True)
    assert r.steps == 20 and r.executed.shape == (20, 8) and len(r.frames) == 10
    assert policy.instruction == "lift the pen"
    # the attention probe: one record per step for the noun "pen", shares of the attention and of the image
    r = rollout(env, policy, "lift the pen", seed=5, rate_hz=20.0, max_seconds=0.5, attention=True)
    assert len(r.attention) == 10 and {(n, p) for n, p, _, _ in r.attention} == {("pen", "reach")}
    assert all(0.0 <= s <= 1.0 and 0.0 < a < 0.2 for _, _, s, a in r.attention)
    row = attention_summary([r])[0]
    assert (row["noun"], row["phase"], row["steps"]) == ("pen", "reach", 10)


def test_attention_share_counts_the_patches_an_object_touches() -> None:
    from ccol_policy.metrics import attention_share, patch_coverage

    mask = np.zeros((120, 160), bool)
    mask[0:10, 0:10] = True  # inside the top-left patch of a 4x4 grid (30 x 40 pixels each)
    cov = patch_coverage(mask, 4)
    assert cov[0, 0] == pytest.approx(100 / 1200) and cov.sum() == pytest.approx(100 / 1200)
    att = np.full(16, 1 / 32)
    att[0] = 17 / 32
    share, area = attention_share(att, cov)
    assert share == pytest.approx(17 / 32) and area == pytest.approx(1 / 16)
    assert attention_share(np.full(16, 1 / 16), cov) == pytest.approx((1 / 16, 1 / 16))  # uniform: chance


def test_ablate_trains_and_evaluates_every_variant_on_the_same_scenes(synthetic_dir: Path, tmp_path: Path) -> None:
    import yaml

    from ccol_sim.ablate import AblationBudget, run_ablation

    from conftest import TINY

    preset = tmp_path / "tiny.yaml"
    preset.write_text(yaml.safe_dump(TINY))
    budget = AblationBudget(steps=3, episodes=1, seeds=1, device="cpu")
    variants = ["full", "wo_disc", "act"]
    result = run_ablation(
        [synthetic_dir], tmp_path / "ab", budget, variants, str(preset), workers=1, progress=False, max_seconds=0.5
    )
    assert list(result["variants"]) == variants
    for v in variants:
        row = result["variants"][v]
        assert set(row["tasks"]) == set(TASKS) and all(t["episodes"] == 1 for t in row["tasks"].values())
        assert row["velocity_fluctuation"] > 0 and row["min_acceleration"] < 0 and 0 <= row["held"] <= 1
        seeds = {json.loads((tmp_path / "ab" / v / "seed0" / "eval" / "sim_eval.json").read_text())["seed"]}
        assert seeds == {0}
    table = (tmp_path / "ab" / "ablation.md").read_text()
    assert all(f"| {v} |" in table for v in variants) and "vel. fluct." in table
    assert (tmp_path / "ab" / "fig3_shoulder.png").stat().st_size > 5000
    # the CSA variants' reports say where each noun's attention fell; the ACT-style one has no CSA attention
    full = json.loads((tmp_path / "ab" / "full" / "seed0" / "eval" / "sim_eval.json").read_text())
    assert [r["noun"] for r in full["tasks"]["lift the pen"]["attention"]] == ["pen"]
    assert "attention on its object" in (tmp_path / "ab" / "full" / "seed0" / "eval" / "sim_eval.md").read_text()
    act = json.loads((tmp_path / "ab" / "act" / "seed0" / "eval" / "sim_eval.json").read_text())
    assert act["tasks"]["lift the pen"]["attention"] == []
    # a rerun reads the finished evaluations back
    before = (tmp_path / "ab" / "act" / "seed0" / "eval" / "sim_eval.json").stat().st_mtime_ns
    run_ablation([synthetic_dir], tmp_path / "ab", budget, ["act"], str(preset), workers=1, progress=False)
    assert (tmp_path / "ab" / "act" / "seed0" / "eval" / "sim_eval.json").stat().st_mtime_ns == before


# ---------------------------------------------------------------------------------------------------- ROS
rclpy = pytest.importorskip("rclpy", reason="rclpy wheels not installed")

from ros_harness import spin_for, spin_until  # noqa: E402


@pytest.fixture
def ros():
    rclpy.init()
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor()
    yield ex
    ex.shutdown()
    rclpy.shutdown()


def test_sim_node_topics_rates_and_trajectory_following(ros) -> None:
    import time

    from builtin_interfaces.msg import Duration
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from ccol_sim.sim_node import SimNode

    sim = SimNode({"image_width": 96, "image_height": 72, "joint_rate_hz": 200.0})
    probe = rclpy.create_node("probe")
    joints, images, grip = [], [], []
    probe.create_subscription(  # the driver's high-rate measured joints, as on the robot
        JointState, "/franka/joint_states", lambda m: joints.append((time.monotonic(), m)), qos_profile_sensor_data
    )
    probe.create_subscription(
        Image, "/camera/camera/color/image_raw", lambda m: images.append((time.monotonic(), m)), qos_profile_sensor_data
    )
    probe.create_subscription(JointState, "/panda_gripper/joint_states", grip.append, qos_profile_sensor_data)
    pub = probe.create_publisher(JointTrajectory, "/joint_trajectory_controller/joint_trajectory", 10)
    ros.add_node(sim)
    ros.add_node(probe)
    spin_for(ros, 2.0)
    span = joints[-1][0] - joints[len(joints) // 2][0]
    joint_rate = (len(joints) - len(joints) // 2 - 1) / span
    image_rate = (len(images) - len(images) // 2 - 1) / (images[-1][0] - images[len(images) // 2][0])
    # rates are reported, not pinned: a loaded 2-core CI machine measured 99.97 Hz of the nominal 200; the
    # assertion is that both streams run (a stalled timer gives a few Hz), with a margin for such a machine
    logging.getLogger(__name__).info(
        "sim_node rates: joints %.1f Hz (200 nominal), images %.1f Hz (30)", joint_rate, image_rate
    )
    assert joint_rate >= 40, joint_rate
    assert 8 <= image_rate <= 45, image_rate
    m = joints[-1][1]
    assert m.name == [f"panda_joint{i}" for i in range(1, 8)] and m.header.stamp.sec > 0
    img = images[-1][1]
    assert (img.width, img.height, img.encoding) == (96, 72, "rgb8") and len(img.data) == 96 * 72 * 3
    assert grip and grip[-1].name == ["panda_finger_joint1", "panda_finger_joint2"]
    # a 1 s move of joint 1 by +0.3 rad and joint 4 by +0.2 rad: tracked in time
    q0 = np.array(m.position)
    goal = q0 + np.array([0.3, 0, 0, 0.2, 0, 0, 0])
    traj = JointTrajectory(joint_names=list(m.name))
    for k in range(1, 11):
        traj.points.append(
            JointTrajectoryPoint(
                positions=(q0 + (goal - q0) * k / 10).tolist(), time_from_start=Duration(sec=0, nanosec=int(k * 1e8))
            )
        )
    pub.publish(traj)
    t_sent = time.monotonic()
    spin_until(ros, lambda: time.monotonic() - t_sent > 0.3, 2.0)
    pub.publish(JointTrajectory(joint_names=list(m.name)))  # empty: JTC rejects it, the motion goes on
    spin_until(ros, lambda: time.monotonic() - t_sent > 0.5, 2.0)
    mid = np.array(joints[-1][1].position)
    spin_until(ros, lambda: time.monotonic() - t_sent > 1.6, 3.0)
    end = np.array(joints[-1][1].position)
    assert np.abs(end - goal).max() < 0.01, end - goal
    assert 0.05 < mid[0] - q0[0] < 0.25  # halfway there at half time, not jumped to the goal
    sim.destroy_node()
    probe.destroy_node()


def test_kinesthetic_mode_records_through_the_real_recorder(ros, tmp_path: Path) -> None:
    from ccol_sim.sim_node import SimNode
    from ccol_teleop.recorder_node import RecorderNode

    sim = SimNode(
        {
            "mode": "kinesthetic",
            "instruction": "lift the pen",
            "episodes": 1,
            "image_width": 64,
            "image_height": 48,
            "joint_rate_hz": 100.0,
            "settle_s": 1.5,
        }
    )
    rec = RecorderNode(
        {
            "output_dir": str(tmp_path),
            "instruction": "lift the pen",
            "arm_id": "panda",
            "gripper_namespace": "/panda_gripper",
            "joint_states_rate_hz": 100.0,
            "gripper_rate_hz": 50.0,
            "gripper_control": False,  # the teacher commands the simulated gripper and publishes the command
            "keyboard": False,
            "status_period_s": 2.0,
        }
    )
    ros.add_node(sim)
    ros.add_node(rec)
    assert spin_until(ros, lambda: rec.saved, 40.0), "no episode saved"
    meta = json.loads((rec.saved[0] / "episode.json").read_text())
    assert meta["instruction"] == "lift the pen" and meta["success"] is True
    counts = meta["frame_counts"]
    assert counts["/franka/joint_states"] > 300 and counts["/camera/camera/color/image_raw"] > 80
    assert counts["/ccol/gripper_command"] >= 2  # the teacher's gripper commands are the gripper labels
    from ccol_policy.bags import BagTopics, SyncConfig
    from ccol_policy.dataset_builder import build_dataset

    rows = build_dataset(
        [tmp_path],
        tmp_path / "ds",
        BagTopics(arm_id="panda"),
        # sim, recorder and test share one thread here: allow the odd 0.1-0.2 s stall of a loaded machine
        SyncConfig(control_rate_hz=30.0, image_width=32, image_height=32, max_joint_gap_s=0.3, max_image_age_s=0.3),
        progress=False,
    )
    assert rows[0].status == "ok" and rows[0].gripper_label == "command", rows[0]
    sim.destroy_node()
    rec.destroy_node()


@pytest.mark.parametrize("mode", ["ensemble", "chunk"])
def test_policy_node_moves_the_simulated_arm_with_default_parameters(
    ros, synthetic_dir: Path, tmp_path: Path, mode: str
) -> None:
    import logging
    import time

    from std_srvs.srv import SetBool

    from ccol_policy.policy import CCoLPolicy
    from ccol_policy.policy_node import PolicyNode
    from ccol_policy.training import train
    from ccol_sim.sim_node import SimNode

    from conftest import tiny_config

    train(tiny_config(**{"train.steps": 5}), [synthetic_dir], tmp_path, progress=False)
    policy = CCoLPolicy.from_checkpoint(tmp_path / "best", device="cpu")
    sim = SimNode({"image_width": 64, "image_height": 48, "joint_rate_hz": 100.0})
    node = PolicyNode(
        policy,
        {
            "arm_id": "panda",
            "gripper_namespace": "/panda_gripper",
            "instruction": "lift the pen",
            "execution_mode": mode,
            "gripper_mode": "topic",
        },
    )
    ros.add_node(sim)
    ros.add_node(node)
    client = node.create_client(SetBool, "/policy_node/enable")
    assert client.wait_for_service(timeout_sec=5)
    spin_until(ros, lambda: node.hold_reason == "disabled", 2.0)
    q_before = sim.env.joints()
    fut = client.call_async(SetBool.Request(data=True))
    assert spin_until(ros, fut.done, 5)
    t_enabled = time.monotonic()
    # from the ready pose the arm moves within the node's first second of commands (no first-step deadlock);
    # counted in commands, not wall time, which a loaded machine stretches
    assert spin_until(ros, lambda: np.abs(sim.env.joints() - q_before).max() > 2e-3, 20.0), node.hold_reason
    assert node.commands <= 67, f"the arm moved only after {node.commands} commands"
    logging.getLogger(__name__).info("arm moved %.2f s after enabling", time.monotonic() - t_enabled)
    assert spin_until(ros, lambda: node.commands >= 10, 20.0), node.hold_reason
    assert sim.trajectories_followed >= 5  # the simulator follows the policy's trajectories
    sim.destroy_node()
    node.destroy_node()


def test_replay_of_recorded_demonstrations_succeeds_with_commanded_gripper_labels(tmp_path: Path) -> None:
    import h5py

    from ccol_policy.bags import BagTopics, SyncConfig
    from ccol_policy.cli import main
    from ccol_policy.dataset_builder import build_dataset
    from ccol_sim.recording import record_demonstrations

    rows = record_demonstrations(tmp_path / "bags", 1, seed=0, image_size=(64, 48), progress=False)
    assert all(r.success for r in rows)
    assert [r.task for r in rows] == list(TASKS) and len({r.seed for r in rows}) == 1  # one scene, every task
    # no --arm-id: the robot (panda) comes from each bag's episode.json, not the fr3 default
    built = build_dataset(
        [tmp_path / "bags"],
        tmp_path / "ds",
        BagTopics(),
        SyncConfig(control_rate_hz=30.0, image_width=32, image_height=32),
        progress=False,
        arm_id_from_bag=True,
    )
    assert [r.gripper_label for r in built] == ["command"] * 3
    cli_ds = tmp_path / "ds_cli"  # the same through `ccol build-dataset B --out D`
    assert (
        main(["build-dataset", str(tmp_path / "bags"), "--out", str(cli_ds), "--image-size", "32x32", "--no-progress"])
        == 0
    )
    assert len(list(cli_ds.glob("*.hdf5"))) == 3
    with h5py.File(sorted((tmp_path / "ds").glob("*.hdf5"))[0], "r") as f:  # lift the pen
        q, a = f["observations/qpos"][()], f["action"][()]
        assert f.attrs["seed"] == rows[0].seed and f.attrs["layout"] == "paper"  # replay restores the layout
    # the label says "closed" (0), the measurement stops at the pen's diameter
    assert a[:, 7].min() == 0.0 and q[:, 7].min() > 0.015
    out = tmp_path / "replay.json"
    assert main(["replay", str(tmp_path / "ds"), "--out", str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["successes"] == 3, report  # the labels replayed open loop solve their own scenes
    # in this process (workers=1) exactly as in worker processes (the CLI's default: one per core)
    from ccol_sim.replay import load_replay_episodes, replay_in_sim

    inline = replay_in_sim(load_replay_episodes([tmp_path / "ds"]), workers=1, progress=False)
    assert [r.__dict__ for r in inline] == report["episodes_detail"]
    # bags replay too (synchronised at --rate), the same scenes
    assert main(["replay", str(tmp_path / "bags"), "--out", str(out), "--no-progress"]) == 0
    assert json.loads(out.read_text())["successes"] == 3
    # the privileged-state reference fits these demonstrations from the layout, the joints and the task alone
    from ccol_sim.reference import ReferenceConfig, ReferencePolicy, layout_features, train_reference

    train_reference(tmp_path / "ds", tmp_path / "ref", ReferenceConfig(steps=400, hidden=128, layers=2))
    ref = ReferencePolicy.load(tmp_path / "ref")
    env = PandaTable(render_size=(8, 8))
    lay = layout_features(env, rows[0].seed, "paper")
    env.close()
    for f, task in zip(sorted((tmp_path / "ds").glob("*.hdf5")), TASKS, strict=True):
        with h5py.File(f, "r") as h:
            q, a = h["observations/qpos"][()], h["action"][()]
        t = len(q) // 2
        assert np.abs(ref.chunk(q[t], lay, task)[:10, :7] - a[t : t + 10, :7]).mean() < 0.05, task


def test_teacher_aimed_off_corrects_above_the_object_and_still_succeeds(env: PandaTable) -> None:
    from ccol_sim.teacher import plan, waypoints

    for task in TASKS:
        env.reset(7)
        exact = waypoints(env, task, np.random.default_rng(1))
        off = waypoints(env, task, np.random.default_rng(1), approach_error=0.03)
        assert len(off) == len(exact) + 1
        miss = np.linalg.norm(off[0][0][:2] - exact[0][0][:2])
        assert 0.002 < miss <= 0.03 * 2.5 * np.sqrt(2)  # aimed off, horizontally only
        assert off[0][0][2] == exact[0][0][2]
        np.testing.assert_allclose(off[1][0][:2], exact[0][0][:2])  # corrected above the object...
        assert off[1][0][2] >= 0.10  # ...with the fingertips still above a cube
        for a, b in zip(off[2:], exact[1:]):  # then the same descent and task
            np.testing.assert_allclose(a[0], b[0])
        targets = plan(env, task, np.random.default_rng(1), 30.0, approach_error=0.03)
        for row in targets[1:]:
            env.command(row[:7], row[7])
            env.step(1 / 30)
        assert env.success(task), task


def test_eval_bag_measures_noun_attention_on_simulator_bags(synthetic_dir: Path, tmp_path: Path) -> None:
    from ccol_policy.cli import main
    from ccol_policy.training import train
    from ccol_sim.recording import record_demonstrations

    from conftest import tiny_config

    record_demonstrations(tmp_path / "bags", 1, seed=3, image_size=(64, 48), progress=False)
    train(tiny_config(**{"train.steps": 3}), [synthetic_dir], tmp_path / "ck", progress=False)
    out = tmp_path / "eval"
    args = ["eval-bag", str(tmp_path / "bags"), "--checkpoint", f"tiny={tmp_path / 'ck' / 'best'}", "--out", str(out)]
    assert main([*args, "--arm-id", "panda", "--sim-scene", "--no-progress", "--attention-steps", "0"]) == 0
    nouns = json.loads((out / "report.json").read_text())["summary"]["tiny"]["noun_attention"]
    assert set(nouns) == {"pen", "cube", "cubes"}
    for row in nouns.values():  # steps before the first grasp only; the object covers a few patches
        assert row["steps"] > 10 and 0.0 <= row["share"] <= 1.0 and 0.0 < row["area"] < 0.5
    assert nouns["cubes"]["area"] > nouns["cube"]["area"]  # both cubes against the red one
    assert "attention on its object" in (out / "report.md").read_text()


def test_demo_pipeline_end_to_end_and_rerun_skips_stages(tmp_path: Path, caplog) -> None:
    import logging

    from ccol_sim.pipeline import run_sim_demo

    with caplog.at_level(logging.INFO):
        reports = run_sim_demo(
            tmp_path, episodes_per_task=1, eval_episodes=1, steps=3, max_seconds=0.5, reference_steps=5
        )
    assert set(reports["ccol"]["tasks"]) == set(TASKS)
    report = (tmp_path / "report.md").read_text()
    assert "Scene layout `paper`" in report and "| reference (sim state) | lift the pen |" in report
    assert set(json.loads((tmp_path / "report.json").read_text())["reference"]["tasks"]) == set(TASKS)
    assert len(list((tmp_path / "dataset").glob("*.hdf5"))) == 3
    assert (tmp_path / "success.png").stat().st_size > 2000 and "| ccol | lift the pen |" in (
        tmp_path / "report.md"
    ).read_text()
    assert len(list((tmp_path / "eval_ccol").glob("*.gif"))) == 3
    assert "success (end state)" in report and "first instant" in report
    caplog.clear()
    with caplog.at_level(logging.INFO):  # a second training seed: the finished stages and seed 0 are reused
        reports = run_sim_demo(
            tmp_path, episodes_per_task=1, eval_episodes=1, steps=3, max_seconds=0.5, reference_steps=5, seeds=2
        )
    assert "stage 1/4" not in caplog.text and "stage 2/4" not in caplog.text
    assert "training ccol seed 1 (3 steps, small_cpu preset, seed 1)" in caplog.text
    assert list(reports) == ["ccol seed 0", "ccol seed 1"] and (tmp_path / "train_ccol_seed1" / "best").is_dir()
    report = (tmp_path / "report.md").read_text()
    assert "## Training seeds" in report and "| ccol | 2 |" in report


def _finger_table_force(env: PandaTable) -> float:
    """Normal force (N) of all finger-table contacts now."""
    import mujoco

    m, d = env.model, env.data
    table = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table")
    fingers = {g for g in range(m.ngeom) if "finger" in (m.body(m.geom_bodyid[g]).name or "")}
    force, total = np.zeros(6), 0.0
    for k, c in enumerate(d.contact[: d.ncon]):
        if table in (c.geom1, c.geom2) and {c.geom1, c.geom2} & fingers:
            mujoco.mj_contactForce(m, d, k, force)
            total += force[0]
    return total


def test_franka_kinematics_match_the_simulated_arm_and_the_floor_keeps_a_low_policy_off_the_table(
    env: PandaTable,
) -> None:
    from ccol_policy.control import ClosedLoopExecutor
    from ccol_policy.kinematics import joint_frames, tcp_jacobian
    from ccol_sim.scene import SIM_TO_REAL
    from ccol_sim.sim_eval import run_episode
    from ccol_sim.teacher import TCP_FLOOR_Z, plan

    seed, task = 101, "place the cubes"
    env.reset(seed)
    targets = plan(env, task, np.random.default_rng(seed), 30.0)
    # the simulated Panda's end-effector site is Franka's hand_tcp (DH kinematics) within 0.5 mm
    import mujoco

    scratch = mujoco.MjData(env.model)
    for q in targets[::25, :7]:
        scratch.qpos[:] = env.data.qpos
        scratch.qpos[env.ids.arm_qpos] = q - SIM_TO_REAL
        mujoco.mj_kinematics(env.model, scratch)
        tcp = joint_frames(q[None])[1][0, :3, 3]
        np.testing.assert_allclose(tcp, scratch.site_xpos[env.ids.ee_site], atol=5e-4)
    # a policy 6 mm low near the table, executed with and without the floor; the teacher itself is never raised
    tip, jac = tcp_jacobian(targets[:, :7])
    down = np.zeros((len(targets), 6))
    down[:, 2] = np.where(tip[:, 2] < 0.07, -0.006, 0.0)
    low = targets.copy()
    low[:, :7] += np.einsum("nij,nj->ni", np.linalg.pinv(jac), down)
    pressed = {}
    for name, labels, floor in (("low", low, None), ("low+floor", low, TCP_FLOOR_Z), ("teacher", targets, TCP_FLOOR_Z)):
        padded = np.concatenate([labels, np.repeat(labels[-1:], 30, 0)])
        forces: list[float] = []

        def source(step: int, image: None, q: np.ndarray, p: np.ndarray = padded, f: list = forces) -> np.ndarray:
            f.append(_finger_table_force(env))
            return p[step : step + 30]

        executor = ClosedLoopExecutor("panda", 1 / 30, 30, 8, mode="chunk", tcp_floor_z=floor)
        r = run_episode(env, source, executor, task, seed, 30.0, len(labels), render=False)
        pressed[name] = (max(forces), r.raised)
    assert pressed["teacher"][1] == 0, pressed  # demonstrations replay untouched
    assert pressed["low+floor"][1] > 0 and pressed["low"][1] == 0
    assert pressed["low+floor"][0] < 0.1 * pressed["low"][0], pressed  # measured: 0 N against 65 N


def test_arm_servos_track_like_the_franka(env: PandaTable) -> None:
    """The Franka compensates gravity itself: a held pose stays put and the teacher's motion is tracked within a
    milliradian (without the links' gravity compensation: 5 mrad off at rest, 6.6 mrad mean on joint 2)."""
    from ccol_sim.teacher import plan

    assert env.model.ngravcomp > 0
    env.reset(101)
    q = env.joints().copy()
    for _ in range(60):
        env.command(q, 0.08)
        env.step(1 / 30)
    np.testing.assert_allclose(env.joints(), q, atol=1e-4)
    env.reset(101)
    errors = []
    for row in plan(env, "place the cubes", np.random.default_rng(101), 30.0)[1:]:
        env.command(row[:7], row[7])
        env.step(1 / 30)
        errors.append(np.abs(env.joints() - row[:7]))
    assert np.mean(errors, axis=0).max() < 1.5e-3, np.mean(errors, axis=0)


def test_sim_eval_through_ros_runs_policy_node_against_sim_node(synthetic_dir: Path, tmp_path: Path) -> None:
    """The deployed path: policy_node in its own process at its default rate, sim_node over DDS on simulated time,
    trajectories followed with JTC's rules; the report counts the same scenes as sim-eval and the followed
    trajectories' peak desired acceleration stays within the Panda's limits."""
    from ccol_policy.training import train
    from ccol_sim.through_ros import through_ros, through_ros_table

    from conftest import tiny_config

    train(tiny_config(**{"train.steps": 5}), [synthetic_dir], tmp_path / "run", progress=False)
    report = through_ros(
        tmp_path / "run" / "best",
        tmp_path / "eval",
        tasks=["lift the pen"],
        episodes=1,
        max_seconds=1.5,
        image_size=(64, 48),
        progress=False,
    )
    s = report["tasks"]["lift the pen"]
    assert s["episodes"] == 1 and report["episodes"][0]["seed"] == 1_000_000  # sim-eval's first held-out scene
    assert report["episodes"][0]["trajectories"] > 0 and report["episodes"][0]["seconds"] >= 1.5
    assert 0 < s["peak_over_limit"] <= 1.0, s["peak_acceleration"]
    assert 0 < report["realtime_factor"] <= 1.05
    assert "through ROS" in through_ros_table(report) and (tmp_path / "eval" / "through_ros.json").exists()
