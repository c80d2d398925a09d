"""`sim_node`: the simulated Panda on the topics of its driver row (ccol_policy.robots) and realsense-ros.

Publishes the measured joints on the driver's high-rate topic (`/franka/joint_states`) at `joint_rate_hz`,
joint_state_publisher's merged `/joint_states` at 30 Hz, the gripper's joint states on `<gripper ns>/joint_states`
at the driver's gripper rate, the colour image (+ camera info, optional aligned depth) at `camera_rate_hz` on
`/camera/camera/...`, stamped with the node clock. With `publish_clock:=true` the simulator keeps its own time,
publishes it on /clock (nodes with use_sim_time:=true follow it) and advances it in real time at most: when the
machine cannot keep up, simulated time slows down with it rather than outrunning the nodes.

mode:=follow      behaves like ros2_controllers' joint_trajectory_controller on its topic (`ccol_policy.jtc`, its
                  source as the spec), sampled at every 2 ms physics step: a new trajectory starts at the next
                  update (header.stamp 0) from the state `jtc_start_state` names (Jazzy's
                  interpolate_from_desired_state: the desired one; Humble: the measured one), positions with
                  velocities are interpolated as cubic splines (positions only: linearly), the last point is held
                  after the end, and an empty trajectory is rejected ("Empty trajectory received.") so the running
                  one goes on, as on the robot. The gripper follows the policy node's width (std_msgs/Float64).
                  `~/reset` (std_srvs/Trigger) draws a new scene.
mode:=kinesthetic the scripted teacher performs `instruction` while the recorder records: for each episode the
                  node resets the scene, calls the recorder's `~/start`, demonstrates (publishing its gripper
                  commands on `/ccol/gripper_command`, as the recorder logs an operator's), and calls `~/stop` (or
                  `~/stop_failure` when the teacher failed).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ccol_policy.bags import GRIPPER_COMMAND_TOPIC
from ccol_policy.jtc import JTCFollower, StartState
from ccol_policy.node_parameters import Param, declare_parameters
from ccol_policy.robots import arm_joint_names, finger_joint_names, profile_for
from ccol_sim.env import TASKS, PandaTable
from ccol_sim.layouts import DEFAULT_LAYOUT
from ccol_sim.teacher import plan

PARAMETERS: dict[str, Param] = {
    "arm_id": Param("panda", "panda (the simulated arm) or a prefixed id: joint names and the driver row's topics"),
    "mode": Param("follow", "follow: a joint_trajectory_controller on its topic; kinesthetic: the scripted teacher"),
    "instruction": Param("lift the pen", "kinesthetic: the task the teacher demonstrates"),
    "episodes": Param(10, "kinesthetic: demonstrations to record (0: until stopped)"),
    "seed": Param(0, "scene draws"),
    "joint_rate_hz": Param(250.0, "rate of the measured joints (Hz; whole 2 ms physics steps between them)"),
    "jtc_start_state": Param(
        "desired",
        "follow: where a new trajectory starts: desired (Jazzy, interpolate_from_desired_state), "
        "measured (Humble and both distros' default) or last_commanded (Humble, open_loop_control)",
    ),
    "publish_clock": Param(False, "keep simulated time, publish it on /clock, never faster than real time"),
    "camera_rate_hz": Param(30.0, "rate of the colour image, camera info and depth (Hz)"),
    "image_width": Param(640, "rendered image width (px), as realsense.yaml's D435i profile"),
    "image_height": Param(480, "rendered image height (px)"),
    "publish_depth": Param(False, "also publish aligned depth (16UC1, mm)"),
    "trajectory_topic": Param("/joint_trajectory_controller/joint_trajectory", "follow: the trajectories to follow"),
    "gripper_command_topic": Param("/policy_node/gripper_width", "follow: the gripper width to follow (Float64, m)"),
    "recorder_node": Param("/recorder_node", "kinesthetic: the recorder whose ~/start and ~/stop are called"),
    "settle_s": Param(1.5, "kinesthetic: pause between episodes (s; the recorder checks topic rates before starting)"),
}


class SimNode(Node):
    def __init__(self, parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__("sim_node", parameter_overrides=overrides)
        declare_parameters(self, PARAMETERS)
        p = self._param
        self.arm_id = p("arm_id")
        self.profile = profile_for(self.arm_id)
        self.arm_joints = arm_joint_names(self.arm_id)
        self.fingers = finger_joint_names(self.arm_id)
        self.mode = p("mode")
        if self.mode not in ("follow", "kinesthetic"):
            raise ValueError(f"mode must be 'follow' or 'kinesthetic', got {self.mode!r}")
        if self.mode == "kinesthetic" and p("instruction") not in TASKS:
            raise ValueError(f"the scripted teacher knows {list(TASKS)}, not {p('instruction')!r}")
        self.env = PandaTable(render_size=(p("image_width"), p("image_height")))
        self.seed = int(p("seed"))
        self.env.reset(self.seed)
        self.physics_dt = self.env.model.opt.timestep
        self.substeps = max(1, round(1.0 / (p("joint_rate_hz") * self.physics_dt)))
        self.dt = self.substeps * self.physics_dt
        self.target = self.env.joints()
        self.width = self.env.gripper_width()
        self.start_state = StartState(p("jtc_start_state"))
        self.follower = JTCFollower(self.target, self.start_state)
        self.trajectories_followed = 0
        self.publish_clock = bool(p("publish_clock"))
        self.sim_time = 0.0  # s, with publish_clock
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.publish_clock else None
        self.sim_start = self.env.time
        self.wall_start = self._now()

        sensor = qos_profile_sensor_data
        self.joint_pub = self.create_publisher(JointState, self.profile.joint_states_topic, sensor)
        self.merged_pub = self.create_publisher(JointState, "/joint_states", 10)  # joint_state_publisher, 30 Hz
        self.gripper_pub = self.create_publisher(JointState, self.profile.gripper_joint_states_topic, sensor)
        self.command_pub = self.create_publisher(JointState, GRIPPER_COMMAND_TOPIC, 10)
        self._last_command: float | None = None
        self.image_pub = self.create_publisher(Image, "/camera/camera/color/image_raw", sensor)
        self.info_pub = self.create_publisher(CameraInfo, "/camera/camera/color/camera_info", sensor)
        self.depth_pub = (
            self.create_publisher(Image, "/camera/camera/aligned_depth_to_color/image_raw", sensor)
            if p("publish_depth")
            else None
        )
        self.create_subscription(JointTrajectory, p("trajectory_topic"), self._on_trajectory, 10)
        self.create_subscription(Float64, p("gripper_command_topic"), self._on_gripper, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(self.dt, self._tick)
        # the other streams at their rates: of simulated time with publish_clock (every tick checks which are due),
        # of the node clock otherwise
        self._streams = [
            [1.0 / self.profile.gripper_rate_hz, self._gripper_state, 0.0],
            [1.0 / 30.0, self._merged_state, 0.0],
            [1.0 / p("camera_rate_hz"), self._camera, 0.0],
        ]
        if not self.publish_clock:
            for period, publish, _ in self._streams:
                self.create_timer(period, publish)
        self.peak_acceleration = np.zeros(7)  # follow: the largest desired |acceleration| per joint (rad/s^2)
        self.episodes_done = 0
        self.demo: dict[str, Any] | None = None
        if self.mode == "kinesthetic":
            rec = p("recorder_node")
            self.recorder_clients = {
                name: self.create_client(Trigger, f"{rec}/{name}") for name in ("start", "stop", "stop_failure")
            }
            self._pending = None
            self._next_episode_at = self._now() + p("settle_s")
        self.get_logger().info(
            f"simulated Panda up: mode={self.mode}, joints at {1 / self.dt:.0f} Hz, camera "
            f"{p('image_width')}x{p('image_height')} at {p('camera_rate_hz'):.0f} Hz"
        )

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _now(self) -> float:
        """The simulator's time (s): its own with publish_clock, else the node clock."""
        if self.publish_clock:
            return self.sim_time
        return self.get_clock().now().nanoseconds * 1e-9

    def _stamp(self) -> Time:
        if self.publish_clock:
            ns = round(self.sim_time * 1e9)
            return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        return self.get_clock().now().to_msg()

    # ------------------------------------------------------------------ commands
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if self.mode != "follow":
            return
        index = {n: i for i, n in enumerate(msg.joint_names)}
        if any(n not in index for n in self.arm_joints):
            self.get_logger().error(
                f"trajectory joints {list(msg.joint_names)} are not {self.arm_joints}; ignored",
                throttle_duration_sec=2.0,
            )
            return
        order = [index[n] for n in self.arm_joints]
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        pts = np.array([[p.positions[i] for i in order] for p in msg.points])
        vel = None
        if all(len(p.velocities) == len(msg.joint_names) for p in msg.points):
            vel = np.array([[p.velocities[i] for i in order] for p in msg.points])
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        rejection = self.follower.receive(times, pts, vel, stamp)
        if rejection:
            self.get_logger().error(rejection, throttle_duration_sec=2.0)
            return
        self.trajectories_followed += 1

    def _on_gripper(self, msg: Float64) -> None:
        if self.mode == "follow" and np.isfinite(msg.data):
            self.width = float(np.clip(msg.data, 0.0, 0.08))

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.seed += 1
        self.new_scene(self.seed)
        response.success, response.message = True, f"new scene from seed {self.seed}"
        return response

    def new_scene(self, seed: int, layout: str = DEFAULT_LAYOUT) -> None:
        """The scene of `seed` in `layout`, the controller holding the arm there."""
        self.env.reset(seed, layout=layout)
        self.target, self.width = self.env.joints(), self.env.gripper_width()
        self.follower = JTCFollower(self.target, self.start_state)

    # ------------------------------------------------------------------ simulation
    def _tick(self) -> None:
        now = self._now()
        if self.mode == "kinesthetic":
            self._teacher(now)
            self.env.command(self.target, self.width)
            self.env.step(self.dt)
        else:
            for k in range(self.substeps):  # the controller's update at every physics step
                measured = (self.env.joints(), self.env.joint_velocities()) if self.follower.needs_measured() else None
                self.target, _, accel = self.follower.update(now + k * self.physics_dt, measured)
                self.peak_acceleration = np.maximum(self.peak_acceleration, np.abs(accel))
                self.env.command(self.target, self.width)
                self.env.step(self.physics_dt)
        if self.publish_clock:
            self.sim_time += self.dt
            self.clock_pub.publish(Clock(clock=self._stamp()))
            for stream in self._streams:
                if self.sim_time >= stream[2] - 1e-9:
                    stream[1]()
                    stream[2] = self.sim_time + stream[0]
        js = JointState(
            name=list(self.arm_joints),
            position=self.env.joints().tolist(),
            velocity=self.env.joint_velocities().tolist(),
        )
        js.header.stamp = self._stamp()
        self.joint_pub.publish(js)

    def _gripper_state(self) -> None:
        w = self.env.gripper_width() / 2
        gs = JointState(name=list(self.fingers), position=[w, w])
        gs.header.stamp = self._stamp()
        self.gripper_pub.publish(gs)

    def _merged_state(self) -> None:
        w = self.env.gripper_width() / 2
        js = JointState(name=[*self.arm_joints, *self.fingers], position=[*self.env.joints().tolist(), w, w])
        js.header.stamp = self._stamp()
        self.merged_pub.publish(js)

    def _camera(self) -> None:
        stamp = self._stamp()
        img = self.env.render()
        h, w = img.shape[:2]
        msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3, data=img.tobytes())
        msg.header.stamp = stamp
        msg.header.frame_id = "camera_color_optical_frame"
        self.image_pub.publish(msg)
        f = 0.5 * h / np.tan(np.deg2rad(self.env.model.cam_fovy[self.env.ids.camera]) / 2)
        info = CameraInfo(
            width=w,
            height=h,
            distortion_model="plumb_bob",
            d=[0.0] * 5,
            k=[f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0],
        )
        info.header = msg.header
        self.info_pub.publish(info)
        if self.depth_pub is not None:
            mm = np.clip(self.env.render_depth() * 1000, 0, 65535).astype("<u2")
            d = Image(height=h, width=w, encoding="16UC1", is_bigendian=0, step=w * 2, data=mm.tobytes())
            d.header = msg.header
            self.depth_pub.publish(d)

    # ------------------------------------------------------------------ kinesthetic teacher
    def _teacher(self, now: float) -> None:
        task = self._param("instruction")
        if self._pending is not None:  # waiting for a recorder service
            if not self._pending[1].done():
                return
            kind, fut = self._pending
            self._pending = None
            result = fut.result()
            if kind == "start":
                if not result.success:
                    self.get_logger().warning(f"recorder refused to start: {result.message}; retrying")
                    self._next_episode_at = now + 1.0
                    self.demo = None
                    return
                self.demo["started"] = True
            else:
                self.get_logger().info(f"episode {self.episodes_done} done: {result.message}")
                self.demo = None
                self._next_episode_at = now + self._param("settle_s")
            return
        if self.demo is None:
            total = self._param("episodes")
            if total and self.episodes_done >= total:
                return
            if now < self._next_episode_at:
                return
            if not self.recorder_clients["start"].service_is_ready():
                self.get_logger().info("waiting for the recorder's ~/start service", throttle_duration_sec=5.0)
                return
            self.seed += 1
            self.env.reset(self.seed)
            self.target, self.width = self.env.joints(), self.env.gripper_width()
            rows = plan(self.env, task, np.random.default_rng(self.seed + 7919), 1.0 / self.dt)
            self.demo = {"rows": rows, "i": 0, "started": False}
            self._last_command = None
            self._pending = ("start", self.recorder_clients["start"].call_async(Trigger.Request()))
            return
        if not self.demo["started"]:
            return
        rows = self.demo["rows"]
        if self.demo["i"] < len(rows):
            self.target, self.width = rows[self.demo["i"], :7], float(rows[self.demo["i"], 7])
            self.demo["i"] += 1
            if self.width != self._last_command:  # what the teacher tells the gripper: the action label
                cmd = JointState(name=["gripper_command"], position=[self.width])
                cmd.header.stamp = self._stamp()
                self.command_pub.publish(cmd)
                self._last_command = self.width
            return
        ok = self.env.end_state_success(task)
        self.episodes_done += 1
        self._pending = ("stop", self.recorder_clients["stop" if ok else "stop_failure"].call_async(Trigger.Request()))


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    try:
        node = SimNode()
    except (ValueError, FileNotFoundError) as exc:
        rclpy.logging.get_logger("sim_node").fatal(str(exc))
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.env.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
