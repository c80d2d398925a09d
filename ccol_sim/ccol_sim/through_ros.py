"""`ccol sim-eval --through-ros`: the deployed path, measured. `policy_node` runs in its own process at its default
rate and parameters (the robot's, bar the simulated hand's fingertip length and table) against `sim_node` over
DDS: images and joint states as the driver and realsense-ros publish them, JointTrajectory messages followed with
joint_trajectory_controller's rules (`ccol_policy.jtc`, sampled every 2 ms of simulated time), the gripper width
on its topic. The held-out scenes, the success tests (end state first, first instant beside) and the episode
length are `ccol sim-eval`'s.

Time: `sim_node` keeps simulated time, publishes it on /clock and advances it in real time at most (one 4 ms tick
per timer callback, never catching up); `policy_node` runs on it (use_sim_time). On a machine that cannot keep up,
simulated time slows down, so the node is never outrun; its inference still takes real time, as on the robot.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ccol_policy.checkpoint import load_checkpoint
from ccol_policy.control import control_rate_hz
from ccol_policy.robots import LIMITS, SIM_HAND_TCP_TO_TIP_M
from ccol_sim.env import TASKS
from ccol_sim.layouts import DEFAULT_LAYOUT
from ccol_sim.sim_eval import EVAL_SEED_OFFSET, wilson_interval
from ccol_sim.teacher import TCP_FLOOR_Z

log = logging.getLogger(__name__)
NODE = "/policy_node"


def policy_node_command(checkpoint: str | Path, task: str, device: str, rate_hz: float | None) -> list[str]:
    """policy_node as `ros2 launch ccol_bringup policy.launch.py use_sim:=true` starts it, on simulated time; its
    floor at the simulated table (sim-eval's `TCP_FLOOR_Z`)."""
    clearance = 0.004  # policy_node's fingertip_clearance_m default
    params: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "instruction": task,
        "use_sim_time": True,
        "arm_id": "panda",
        "gripper_namespace": "/panda_gripper",
        "gripper_mode": "topic",
        "device": device,
        "tcp_to_fingertip_m": SIM_HAND_TCP_TO_TIP_M,
        "table_z": TCP_FLOOR_Z - SIM_HAND_TCP_TO_TIP_M - clearance,
    }
    if rate_hz:
        params["rate_hz"] = float(rate_hz)
    args = [a for k, v in params.items() for a in ("-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}")]
    return [sys.executable, "-m", "ccol_policy.policy_node", "--ros-args", *args]


def through_ros(
    checkpoint: str | Path,
    out_dir: str | Path,
    tasks: list[str] | None = None,
    episodes: int = 10,
    seed: int = 0,
    device: str = "cpu",
    max_seconds: float = 12.0,
    image_size: tuple[int, int] = (160, 120),
    layout: str = DEFAULT_LAYOUT,
    node_rate_hz: float | None = None,
    jtc_start_state: str = "desired",
    progress: bool = True,
) -> dict[str, Any]:
    """Success per task through policy_node and sim_node over DDS, the followed trajectories' peak desired
    acceleration per joint against the arm's limits, and how fast simulated time ran; writes through_ros.json/.md."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import String
    from std_srvs.srv import SetBool
    from tqdm import tqdm

    from ccol_sim.sim_node import SimNode

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = load_checkpoint(checkpoint)
    tasks = tasks or [t for t in TASKS if t in ckpt.instructions] or list(TASKS)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rclpy.init()
    sim = SimNode(
        {
            "image_width": image_size[0],
            "image_height": image_size[1],
            "publish_clock": True,
            "jtc_start_state": jtc_start_state,
        }
    )
    driver = rclpy.create_node("ccol_sim_eval")
    enable = driver.create_client(SetBool, f"{NODE}/enable")
    instruction = driver.create_publisher(String, f"{NODE}/instruction", 10)
    status: dict[str, str] = {}
    driver.create_subscription(
        DiagnosticArray, f"{NODE}/status", lambda m: status.update({kv.key: kv.value for kv in m.status[0].values}), 10
    )
    ex = SingleThreadedExecutor()
    ex.add_node(sim)
    ex.add_node(driver)
    node_log = out / "policy_node.log"
    with open(node_log, "w") as sink:  # a file, not a pipe: a long run's log would fill a pipe and block the node
        proc = subprocess.Popen(
            policy_node_command(checkpoint, tasks[0], device, node_rate_hz), stdout=sink, stderr=subprocess.STDOUT
        )

    def spin_until(condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if proc.poll() is not None:
                raise RuntimeError(f"policy_node exited ({proc.returncode}): {node_log.read_text()[-3000:]}")
            ex.spin_once(timeout_sec=0.005)
        return condition()

    def set_enabled(on: bool) -> None:
        future = enable.call_async(SetBool.Request(data=on))
        if not spin_until(future.done, 30.0) or not future.result().success:
            raise RuntimeError(f"policy_node did not answer ~/enable {on}")

    jobs = [(task, seed + EVAL_SEED_OFFSET + i) for task in tasks for i in range(episodes)]
    rows: list[dict[str, Any]] = []
    wall0, sim0 = time.monotonic(), sim.sim_time
    try:
        if not spin_until(lambda: enable.service_is_ready(), 180.0):
            raise RuntimeError("policy_node's ~/enable did not come up within 180 s")
        bar = tqdm(jobs, desc="sim-eval through ROS", unit="episode", disable=not progress)
        for task, scene in bar:
            set_enabled(False)
            spin_until(lambda: False, 0.3)  # the stop sent on disabling arrives before the new scene, not after
            sim.new_scene(scene, layout)
            instruction.publish(String(data=task))
            spin_until(lambda task=task: status.get("instruction") == task, 30.0)
            # (policy_node predicts from no frame taken before ~/enable: the previous scene's last one stays unused)
            sim.peak_acceleration[:] = 0.0
            t0, commands0 = sim.sim_time, sim.trajectories_followed
            set_enabled(True)
            first_instant = False
            while sim.sim_time - t0 < max_seconds:
                spin_until(lambda: False, 0.02)
                first_instant = first_instant or sim.env.success(task)
            rows.append(
                {
                    "task": task,
                    "seed": scene,
                    "success": sim.env.end_state_success(task),
                    "first_instant": first_instant,
                    "seconds": sim.sim_time - t0,
                    "trajectories": sim.trajectories_followed - commands0,
                    "peak_acceleration": sim.peak_acceleration.tolist(),
                    "node_rate_hz": float(status.get("achieved_rate_hz", "nan")),
                }
            )
            bar.set_postfix_str(f"success={sum(r['success'] for r in rows)}/{len(rows)}")
        set_enabled(False)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        ex.shutdown()
        sim.env.close()
        sim.destroy_node()
        driver.destroy_node()
        rclpy.try_shutdown()
    report = summarise_through_ros(rows, ckpt.meta, tasks, layout, (sim.sim_time - sim0) / (time.monotonic() - wall0))
    report["checkpoint"] = str(checkpoint)
    report["jtc_start_state"] = jtc_start_state
    (out / "through_ros.json").write_text(json.dumps(report, indent=1))
    beside = out / "sim_eval.json"  # `ccol sim-eval --out` the same folder first to see both side by side
    other = json.loads(beside.read_text()) if beside.is_file() else None
    (out / "through_ros.md").write_text(
        f"# sim-eval through ROS of {checkpoint}\n\n{through_ros_table(report, other)}\n"
    )
    return report


def summarise_through_ros(
    rows: list[dict[str, Any]], meta: dict[str, Any], tasks: list[str], layout: str, realtime_factor: float
) -> dict[str, Any]:
    limit = LIMITS["panda"].acceleration
    summary = {}
    for task in tasks:
        rs = [r for r in rows if r["task"] == task]
        ok = sum(r["success"] for r in rs)
        peak = np.max([r["peak_acceleration"] for r in rs], axis=0) if rs else np.zeros(7)
        summary[task] = {
            "episodes": len(rs),
            "successes": ok,
            "success_rate": ok / max(len(rs), 1),
            "ci95": wilson_interval(ok, len(rs)),
            "first_instant_successes": sum(r["first_instant"] for r in rs),
            "peak_acceleration": peak.tolist(),
            "peak_over_limit": float((peak / limit).max()),
            "node_rate_hz": float(np.nanmedian([r["node_rate_hz"] for r in rs])) if rs else float("nan"),
        }
    return {
        "control_rate_hz": control_rate_hz(meta),
        "layout": layout,
        "realtime_factor": realtime_factor,
        "acceleration_limit": limit.tolist(),
        "tasks": summary,
        "episodes": rows,
    }


def through_ros_table(report: dict[str, Any], sim_eval_report: dict[str, Any] | None = None) -> str:
    """Success through ROS beside sim-eval's on the same scenes (when given), with the peak desired acceleration."""
    head = (
        "| task | through ROS: end state (first instant) | sim-eval: end state (first instant) "
        "| peak desired acceleration / limit (worst joint) | node rate (Hz) |"
    )
    lines = [head, "|---|---|---|---|---|"]

    def both(s: dict[str, Any]) -> str:
        return f"{s['successes']}/{s['episodes']} ({s.get('first_instant_successes', '-')}/{s['episodes']})"

    for task, s in report["tasks"].items():
        other = (sim_eval_report or {}).get("tasks", {}).get(task)
        lines.append(
            f"| {task} | {both(s)} | {both(other) if other else '-'} | {s['peak_over_limit']:.2f} | "
            f"{s['node_rate_hz']:.1f} |"
        )
    lines.append(f"\nsimulated time ran at {report['realtime_factor']:.2f} x real time")
    return "\n".join(lines)
