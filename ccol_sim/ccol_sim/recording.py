"""Scripted demonstrations written as episode bags, exactly as the recorder writes them (same topics, types,
episode.json), without a ROS graph: what `record.launch.py use_sim:=true` records, in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.typesys import Stores, get_typestore

from ccol_policy.robots import arm_joint_names, finger_joint_names, profile_for
from ccol_sim.env import TASKS, PandaTable
from ccol_sim.layouts import DEFAULT_LAYOUT
from ccol_sim.parallel import run_jobs
from ccol_sim.teacher import plan
from ccol_teleop.episodes import GRIPPER_COMMAND_TOPIC, INSTRUCTION_TOPIC, EpisodeWriter, next_index

log = logging.getLogger(__name__)
TS = get_typestore(Stores.ROS2_JAZZY)
EPOCH = 1_700_000_000.0  # sim time 0 as a wall-clock-like stamp
COLOR = "/camera/camera/color/image_raw"
DEPTH = "/camera/camera/aligned_depth_to_color/image_raw"


def _header(t: float, frame: str = "") -> object:
    s = EPOCH + t
    return TS.types["std_msgs/msg/Header"](
        stamp=TS.types["builtin_interfaces/msg/Time"](sec=int(s), nanosec=int(round((s % 1) * 1e9)) % 1_000_000_000),
        frame_id=frame,
    )


def joint_state_cdr(names: list[str], pos: np.ndarray, t: float) -> bytes:
    msg = TS.types["sensor_msgs/msg/JointState"](
        header=_header(t), name=names, position=np.asarray(pos, np.float64), velocity=np.zeros(0), effort=np.zeros(0)
    )
    return TS.serialize_cdr(msg, "sensor_msgs/msg/JointState")


def image_cdr(img: np.ndarray, t: float, encoding: str = "rgb8") -> bytes:
    h, w = img.shape[:2]
    msg = TS.types["sensor_msgs/msg/Image"](
        header=_header(t, "camera_color_optical_frame"),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=int(img.strides[0]),
        data=np.ascontiguousarray(img).reshape(-1).view(np.uint8),
    )
    return TS.serialize_cdr(msg, "sensor_msgs/msg/Image")


@dataclass
class DemoRow:
    task: str
    seed: int
    success: bool
    path: str
    seconds: float = 0.0  # the demonstration's length


def record_episode(
    env: PandaTable,
    out_dir: Path,
    task: str,
    seed: int,
    arm_id: str = "panda",
    joint_rate_hz: float = 100.0,
    camera_rate_hz: float = 30.0,
    depth: bool = False,
    index: int | None = None,
    approach_error: float = 0.0,
    layout: str = DEFAULT_LAYOUT,
    teacher: str = "scripted",
) -> DemoRow:
    """One demonstration by `teacher` (`teacher.TEACHERS`) as the episode bag `index` (default: the next free one)
    in out_dir, judged by its end state; `approach_error`: the teacher's first approach aimed that far off (m, std)
    and corrected above the object (`teacher.waypoints`)."""
    env.reset(seed, layout=layout)
    arm = arm_joint_names(arm_id)
    fingers = finger_joint_names(arm_id)
    profile = profile_for(arm_id)
    topics = {
        profile.joint_states_topic: "sensor_msgs/msg/JointState",
        profile.gripper_joint_states_topic: "sensor_msgs/msg/JointState",
        COLOR: "sensor_msgs/msg/Image",
        GRIPPER_COMMAND_TOPIC: "sensor_msgs/msg/JointState",
    }
    if depth:
        topics[DEPTH] = "sensor_msgs/msg/Image"
    meta = {
        "instruction": task,
        "arm_id": arm_id,
        "topics": topics,
        "source": f"ccol_sim {teacher} teacher",
        "teacher": teacher,
        "sim": True,
        "seed": seed,
        "layout": layout,
        **({"approach_error_m": approach_error} if approach_error > 0 else {}),
    }
    writer = EpisodeWriter(out_dir, next_index(out_dir) if index is None else index, topics, meta)
    try:
        writer.write(
            INSTRUCTION_TOPIC,
            int(EPOCH * 1e9),
            TS.serialize_cdr(TS.types["std_msgs/msg/String"](data=task), "std_msgs/msg/String"),
        )
        targets = plan(env, task, np.random.default_rng(seed + 7919), joint_rate_hz, approach_error, teacher)
        dt = 1.0 / joint_rate_hz
        next_frame = 0.0
        last_command = None
        start = env.time
        for row in targets:
            t = env.time - start
            ns = int((EPOCH + t) * 1e9)
            writer.write(profile.joint_states_topic, ns, joint_state_cdr(arm, env.joints(), t))
            w = env.gripper_width() / 2
            writer.write(profile.gripper_joint_states_topic, ns, joint_state_cdr(fingers, np.array([w, w]), t))
            if t + 1e-9 >= next_frame:
                writer.write(COLOR, ns, image_cdr(env.render(), t))
                if depth:
                    mm = np.clip(env.render_depth() * 1000, 0, 65535).astype("<u2")
                    writer.write(DEPTH, ns, image_cdr(mm, t, "16UC1"))
                next_frame += 1.0 / camera_rate_hz
            if row[7] != last_command:  # the teacher's gripper command, as the recorder logs the operator's
                writer.write(GRIPPER_COMMAND_TOPIC, ns, joint_state_cdr(["gripper_command"], row[7:8], t))
                last_command = row[7]
            env.command(row[:7], row[7])
            env.step(dt)
        success = env.end_state_success(task)
        path = writer.close(success=success, task=task)
    except BaseException:
        writer.discard()
        raise
    return DemoRow(task, seed, success, str(path), len(targets) / joint_rate_hz)


def record_demonstrations(
    out_dir: str | Path,
    episodes_per_task: int,
    seed: int = 0,
    tasks: tuple[str, ...] = TASKS,
    image_size: tuple[int, int] = (160, 120),
    progress: bool = True,
    workers: int = 0,
    approach_error: float = 0.0,
    layout: str = DEFAULT_LAYOUT,
    teacher: str = "scripted",
) -> list[DemoRow]:
    """episodes_per_task scripted demonstrations of every task as bags in out_dir (failed ones marked so), in
    `workers` processes (0: one per core). Every scene is demonstrated once per task: the same first frame with
    each instruction's motion, so only the instruction tells them apart (with one task per scene a policy can
    tell the task from the scene it memorised and ignore the words);
    `approach_error` (m) aims every demonstration's first approach off and corrects it above the object;
    `layout` names the scene layout (`ccol_sim.layouts.LAYOUTS`); `teacher` who demonstrates (`teacher.TEACHERS`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next_index(out)
    jobs = [
        (out, first + len(tasks) * i + j, task, seed * 100_003 + i, approach_error, layout, teacher)
        for i in range(episodes_per_task)
        for j, task in enumerate(tasks)
    ]
    return run_jobs(
        PandaTable,
        (image_size,),
        _record_job,
        jobs,
        workers,
        on_result=lambda done: f"teacher success={sum(r.success for r in done)}/{len(done)}",
        desc="record demos" if progress else None,
    )


def _record_job(env: PandaTable, job: tuple[Path, int, str, int, float, str, str]) -> DemoRow:
    out, index, task, seed, approach_error, layout, teacher = job
    return record_episode(
        env, out, task, seed, index=index, approach_error=approach_error, layout=layout, teacher=teacher
    )
