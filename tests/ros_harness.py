"""A fake Franka + RealSense for node tests over real DDS, speaking the upstream names of the arm's driver row
(ccol_policy.robots): measured joints on `/franka/joint_states` at 1 kHz, the gripper on `<ns>/joint_states` at
the driver's rate, colour images on realsense-ros' topic; trajectories on the JTC topic are checked as
joint_trajectory_controller does (an empty one is rejected and changes nothing)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(30, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from ccol_policy.jtc import validate_trajectory
from ccol_policy.robots import profile_for


def jtc_rejection(msg: JointTrajectory) -> str | None:
    """What ros2_controllers' joint_trajectory_controller (Jazzy defaults) says when it refuses a trajectory."""
    n = len(msg.joint_names)
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    if any(len(p.positions) != n or len(p.velocities) not in (0, n) for p in msg.points):
        return "Mismatch between joint_names size and number of positions/velocities"
    has_velocities = bool(msg.points) and all(len(p.velocities) == n for p in msg.points)
    velocities = np.array([p.velocities for p in msg.points]) if has_velocities else None
    return validate_trajectory(times, np.array([p.positions for p in msg.points]).reshape(-1, n), velocities, n)


class FakeRobot(Node):
    """Publishes the driver's joint states, the gripper joint states and the colour image with current stamps."""

    CATCH_UP_S = 0.5  # the longest hold of this process made up for: the recorder queues 0.5 s of joint states

    def __init__(self, arm_id: str, qpos: np.ndarray, image: np.ndarray, joint_rate_hz: float = 1000.0) -> None:
        super().__init__("fake_robot")
        profile = profile_for(arm_id)
        self.arm_id = arm_id
        self.qpos = qpos.astype(float)
        self.image = image
        self.encoding = "rgb8"
        self.joint_names = [f"{arm_id}_joint{i}" for i in range(1, 8)]
        self.camera_alive = True
        self.stamp_offset = 0.0
        self.moving = False  # a slow sine on every joint, like a person guiding the arm
        self.sweep_velocity: np.ndarray | None = None  # (7,) rad/s: back and forth over +-0.2 rad at this speed
        self._t0 = time.monotonic()
        sensor = qos_profile_sensor_data
        self.joints_pub = self.create_publisher(JointState, profile.joint_states_topic, sensor)
        self.gripper_pub = self.create_publisher(JointState, profile.gripper_joint_states_topic, sensor)
        self.image_pub = self.create_publisher(Image, "/camera/camera/color/image_raw", sensor)
        self._periods = {"joints": 1 / joint_rate_hz, "gripper": 1 / profile.gripper_rate_hz, "camera": 1 / 30}
        self._last_sample: dict[str, int] = {}  # stream -> stamp (ns, ROS clock) of its last sample
        self.create_timer(0.004, self._joints)  # 1 kHz as bursts of 4 every 4 ms: cheap in Python
        self.create_timer(self._periods["gripper"], self._gripper)
        self.create_timer(self._periods["camera"], self._camera)
        self.received: dict[str, list[Any]] = {}
        self.accepted: list[JointTrajectory] = []  # what joint_trajectory_controller would execute
        self.rejected: list[str] = []  # ... and what it would refuse, with its error
        self.create_subscription(JointTrajectory, profile.trajectory_topic, self._on_trajectory, 10)
        self._initial = self.qpos.copy()
        self.create_subscription(String, "/fake_robot/fault", self._on_fault, 10)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        error = jtc_rejection(msg)
        if error:
            self.rejected.append(error)
        else:
            self.accepted.append(msg)

    def _on_fault(self, msg: String) -> None:
        """Faults for tests that run the robot in another process: nan_joint, stale_camera, mono8, clear."""
        if msg.data == "nan_joint":
            self.qpos[3] = np.nan
        elif msg.data == "stale_camera":
            self.camera_alive = False
        elif msg.data == "mono8":
            self.encoding = "mono8"
        elif msg.data == "clear":
            self.qpos, self.camera_alive, self.encoding = self._initial.copy(), True, "rgb8"

    def listen(self, msg_type: type, topic: str, qos: Any = 10) -> list[Any]:
        box: list[Any] = []
        self.create_subscription(msg_type, topic, box.append, qos)
        return box

    def _stamp(self, t_ns: int | None = None) -> Any:
        """Header stamp for a sample taken at ROS time `t_ns` (default now), shifted back by `stamp_offset` (s)."""
        t_ns = self.get_clock().now().nanoseconds if t_ns is None else t_ns
        return rclpy.time.Time(nanoseconds=t_ns - round(self.stamp_offset * 1e9)).to_msg()

    def _due(self, stream: str) -> list[tuple[int, float]]:
        """(stamp time in ns, age in s) of the samples of `stream` due since its last call, one per period. A test
        process that a loaded machine holds back for a while publishes the samples it missed, stamped when they were
        due, as franka_hardware stamps every 1 kHz packet at the robot whatever the host is doing: a bag gets no gap
        that only this Python process caused. Longer holds than `CATCH_UP_S` stay gaps."""
        now = self.get_clock().now().nanoseconds  # integer ns: seconds since 1970 in a float lose the microseconds
        period = round(self._periods[stream] * 1e9)
        last = self._last_sample.get(stream)
        if last is None or now - last > self.CATCH_UP_S * 1e9:
            last = now - period
        samples = [(t, (now - t) * 1e-9) for t in range(last + period, now + 1, period)]
        if samples:
            self._last_sample[stream] = samples[-1][0]
        return samples

    def current_qpos(self) -> np.ndarray:
        return self.current_state()[0]

    def current_state(self, age_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Positions (8,) and arm velocities (7,) now, or `age_s` ago."""
        q, v = self.qpos.copy(), np.zeros(7)
        t = time.monotonic() - self._t0 - age_s
        if self.moving:
            q[:7] += 0.05 * np.sin(np.pi * t)
            v[:] = 0.05 * np.pi * np.cos(np.pi * t)
        if self.sweep_velocity is not None:  # a triangle wave: full speed except at the turns
            leg = 0.4 / np.abs(self.sweep_velocity)
            phase = np.mod(t, 2 * leg)
            up = phase < leg
            q[:7] += np.where(
                up, -0.2 + np.abs(self.sweep_velocity) * phase, 0.2 - np.abs(self.sweep_velocity) * (phase - leg)
            )
            v = np.where(up, 1.0, -1.0) * np.abs(self.sweep_velocity)
        return q, v

    def _joints(self) -> None:
        msg = JointState(name=list(self.joint_names))
        for t, age in self._due("joints"):
            q, v = self.current_state(age)
            msg.position, msg.velocity = q[:7].tolist(), v.tolist()
            msg.header.stamp = self._stamp(t)
            self.joints_pub.publish(msg)

    def _gripper(self) -> None:
        g = JointState(
            name=[f"{self.arm_id}_finger_joint1", f"{self.arm_id}_finger_joint2"],
            position=[self.qpos[7] / 2, self.qpos[7] / 2],
        )
        for t, _ in self._due("gripper"):
            g.header.stamp = self._stamp(t)
            self.gripper_pub.publish(g)

    def _camera(self) -> None:
        if not self.camera_alive:
            self._last_sample.pop("camera", None)  # a revived camera starts afresh, it does not replay
            return
        due = self._due("camera")
        if not due:
            return
        h, w, _ = self.image.shape
        data = self.image if self.encoding == "rgb8" else self.image[..., 0]
        msg = Image(
            height=h,
            width=w,
            encoding=self.encoding,
            step=w * (3 if self.encoding == "rgb8" else 1),
            data=data.tobytes(),
        )
        msg.header.frame_id = "camera_color_optical_frame"
        for t, _ in due:
            msg.header.stamp = self._stamp(t)
            self.image_pub.publish(msg)


def spin_until(executor: SingleThreadedExecutor, condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
        if condition():
            return True
    return False


def spin_for(executor: SingleThreadedExecutor, seconds: float) -> None:
    spin_until(executor, lambda: False, seconds)
