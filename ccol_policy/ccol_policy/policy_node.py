"""`policy_node`: runs a CCoL checkpoint on camera + joint-state topics and commands the Franka controller.

Subscribes (sensor-data QoS): colour image, optional aligned depth, `/joint_states`, gripper joint states.
Publishes: trajectory_msgs/JointTrajectory to the joint_trajectory_controller (positions and velocities on the
training control grid, the first point at or before receipt, the last at rest after a braking tail), franka_gripper
grasp/move goals (`gripper_mode:=action`; std_msgs/Float64 widths with `gripper_mode:=topic`, as the simulator
takes them), `~/status` (diagnostic_msgs/DiagnosticArray, with a
`gripper` field saying whether the gripper server answers and a `grasp` field saying whether the last grasp holds
something: franka_gripper reports success for a grasp that closed on nothing, so the measured width decides).
Services: `~/enable` (std_srvs/SetBool; the node starts disabled). Topic `~/instruction` (std_msgs/String).
Where ccol_msgs is built, also `~/policy_status` (ccol_msgs/PolicyStatus) and `~/action_chunk`
(ccol_msgs/ActionChunk, every prediction with its latency, for logging).

With `dry_run:=true` (for `ros2 bag play` or a robot under another controller) it predicts every cycle and
publishes the trajectories on `~/dry_run_trajectory` and `~/action_chunk` only.

Chunks become commands through `ClosedLoopExecutor` (shared with `ccol sim-eval` and `ccol replay`): temporal
ensembling on the training control-period grid, one continuous plan within the joint, velocity (FR3: libfranka's
position-dependent) and acceleration limits, streamed so that every message continues the one before at any node
rate. Nothing is published from stale, invalid or grossly wrong data: the cycle holds, says why in the status and a
throttled warning, and on entering a hold sends the plan the controller is following up to its committed point,
then braking to rest within the acceleration limits (`ClosedLoopExecutor.stop`: from the controller's own desired
state, never from stale measurements, never backwards), which joint_trajectory_controller executes instead of the
rest of the plan (it rejects an empty trajectory). The joint states have their own age limit (the driver publishes
at 1 kHz). SIGINT/SIGTERM (Ctrl-C, `ros2 launch` stopping) send that braking before the node exits.
"""

from __future__ import annotations

import collections
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from ccol_policy.checkpoint import CheckpointError
from ccol_policy.control import (
    SAFE_ACCELERATION_SCALE,
    SAFE_VELOCITY_SCALE,
    SAFE_WORKSPACE,
    ClosedLoopExecutor,
    Command,
    LatencyWindow,
    ObservationError,
    control_rate_hz,
    gripper_command,
)
from ccol_policy.gripper import FrankaGripper
from ccol_policy.messages import depth_to_metres, image_to_rgb, trajectory_message
from ccol_policy.node_parameters import Param, declare_parameters
from ccol_policy.policy import CCoLPolicy
from ccol_policy.robots import FRANKA_HAND_TCP_TO_TIP_M, arm_joint_names, finger_joint_names, tcp_floor

PARAMETERS: dict[str, Param] = {
    "checkpoint": Param("", "checkpoint directory written by `ccol train` (OUT/best); required"),
    "instruction": Param("", "task in words, e.g. 'lift the pen'; also settable on ~/instruction"),
    "device": Param("auto", "auto (CUDA when available), cuda or cpu"),
    "half_precision": Param(True, "fp16 autocast on CUDA"),
    "cpu_threads": Param(
        1, "torch intra-op threads on CPU: 1 beats 2 for batch-1 inference of small_cpu (docs/real_time.md); 0: torch's"
    ),
    "rate_hz": Param(67.0, "inference and command rate (Hz)"),
    "control_period_s": Param(0.0, "spacing of trajectory points (s); 0: the checkpoint's training control rate"),
    "arm_id": Param("fr3", "fr3 or panda (or a prefixed id like left_fr3): joint names and limits"),
    "execution_mode": Param("ensemble", "ensemble (ACT temporal ensembling) or chunk (the newest chunk as it is)"),
    "ensemble_m": Param(0.01, "temporal ensembling weight decay m: weights exp(-m * i), i = 0 the oldest chunk"),
    "ensemble_horizon": Param(10, "points of the blended trajectory sent each cycle"),
    "image_topic": Param("/camera/camera/color/image_raw", "colour image (rgb8/bgr8)"),
    "depth_topic": Param("/camera/camera/aligned_depth_to_color/image_raw", "aligned depth, for policies using it"),
    "joint_states_topic": Param(
        "/franka/joint_states", "the driver's 1 kHz measured joints (ccol_policy.robots; launch: from robot_type)"
    ),
    "gripper_namespace": Param(
        "/franka_gripper", "franka_gripper node: joint_states, grasp, move (multipanda_ros2: /panda_gripper)"
    ),
    "trajectory_topic": Param(
        "/joint_trajectory_controller/joint_trajectory", "the joint_trajectory_controller's command topic"
    ),
    "gripper_mode": Param(
        "action", "action: franka_gripper grasp/move; topic: Float64 width on gripper_command_topic (simulator); off"
    ),
    "gripper_command_topic": Param("~/gripper_width", "gripper_mode topic: where the width (m) is published"),
    "gripper_min_change_m": Param(0.005, "a new gripper command only when the width changes by this much (m)"),
    "gripper_speed_mps": Param(0.1, "gripper finger speed (m/s)"),
    "gripper_force_n": Param(40.0, "grasp force when closing (N)"),
    "gripper_grasp_width_m": Param(
        0.0, "a close is a Grasp to this width (m): 0 closes until the fingers stall on the object"
    ),
    "gripper_epsilon_inner_m": Param(0.005, "grasp tolerance below gripper_grasp_width_m (m)"),
    "gripper_epsilon_outer_m": Param(
        0.08, "grasp tolerance above gripper_grasp_width_m (m): the window covers 0..max width, any object succeeds"
    ),
    "gripper_squeeze_m": Param(
        0.01, "topic mode: command this much below a closing/holding width (m; demonstrations label measured widths)"
    ),
    "max_obs_age_s": Param(0.25, "hold when the newest camera image (or gripper state) is older than this (s)"),
    "max_joint_state_age_s": Param(
        0.1, "hold when the newest measured joint state is older than this (s; the driver publishes at 1 kHz)"
    ),
    "min_lead_s": Param(
        0.01, "points of the plan closer than this to now (s) are kept as already sent: the message's delivery time"
    ),
    "expected_image_width": Param(0, "hold on images of another width (px); 0: any size"),
    "expected_image_height": Param(0, "hold on images of another height (px); 0: any size"),
    "max_jump_rad": Param(0.5, "hold when the first target is further than this from the measured joints (rad)"),
    "velocity_scale": Param(
        SAFE_VELOCITY_SCALE, "rate limiter: fraction of the joint velocity limits (first runs: < 1)"
    ),
    "acceleration_scale": Param(
        SAFE_ACCELERATION_SCALE, "rate limiter and the hold's braking: fraction of the joint acceleration limits"
    ),
    "workspace_box": Param(True, "end trajectories before targets whose TCP leaves the box below; hold at its edge"),
    "workspace_min_xyz": Param(
        list(SAFE_WORKSPACE[0]),
        "workspace box lower corner (m, the arm's base frame; the table is fingertip_floor's job)",
    ),
    "workspace_max_xyz": Param(list(SAFE_WORKSPACE[1]), "workspace box upper corner (m, the arm's base frame)"),
    "fingertip_floor": Param(True, "raise targets that would put the fingertips below table_z + clearance"),
    "table_z": Param(0.0, "table top in the arm's base frame (m); 0: the arm stands on the table"),
    "tcp_to_fingertip_m": Param(
        FRANKA_HAND_TCP_TO_TIP_M, "hand_tcp to the fingertips' lowest point (m; Franka Hand, franka_description)"
    ),
    "fingertip_clearance_m": Param(0.004, "the fingertips' lowest commanded height above table_z (m)"),
    "start_enabled": Param(False, "command the robot from the start; false: wait for ~/enable"),
    "dry_run": Param(
        False, "predict on live or `ros2 bag play` data, publish on ~/dry_run_trajectory, never command the robot"
    ),
    "status_rate_hz": Param(2.0, "rate of ~/status and ~/policy_status (Hz)"),
}


@dataclass(frozen=True)
class NodeStatus:
    """The node's state, published twice from this one record: as diagnostic_msgs KeyValues on `~/status`
    (`key_values`) and as ccol_msgs/PolicyStatus on `~/policy_status` (`to_message`, the fields it has)."""

    enabled: bool
    holding: bool
    hold_reason: str
    instruction: str
    achieved_rate_hz: float
    inference_ms_median: float  # over the last window of cycles
    inference_ms_p99: float
    stamp_to_publish_ms_median: float  # image stamp to trajectory publish
    commands_published: int
    execution_mode: str
    targets_raised_to_floor: int
    device: str
    gripper: str  # the gripper mode, "ok", or why the gripper server does not answer
    grasp: str  # "" before any grasp, "holding (width ...)", "missed: ...", "failed: ..."
    grasp_misses: int

    def key_values(self) -> dict[str, str]:
        def text(value: Any) -> str:
            if isinstance(value, float):
                return "nan" if math.isnan(value) else f"{value:.2f}"
            return str(value)

        out = {f.name: text(getattr(self, f.name)) for f in fields(self)}
        out["achieved_rate_hz"] = f"{self.achieved_rate_hz:.1f}"
        return out

    def to_message(self, message_type: type) -> Any:
        names = [f.name for f in fields(self) if f.name in message_type.get_fields_and_field_types()]
        return message_type(**{name: getattr(self, name) for name in names})


def _import_ccol_msgs() -> tuple[type, type] | None:
    try:
        from ccol_msgs.msg import ActionChunk, PolicyStatus
    except ImportError:
        return None
    return PolicyStatus, ActionChunk


class PolicyNode(Node):
    def __init__(self, policy: CCoLPolicy | None = None, parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__("policy_node", parameter_overrides=overrides)
        declare_parameters(self, PARAMETERS)
        p = self._param
        if policy is None:
            if not p("checkpoint"):
                raise CheckpointError("parameter 'checkpoint' is empty: pass checkpoint:=/path/to/run/best")
            policy = CCoLPolicy.from_checkpoint(p("checkpoint"), device=p("device"), half=p("half_precision"))
        self.policy = policy
        policy.set_cpu_threads(p("cpu_threads"))
        self.arm_id = p("arm_id")
        self.arm_joints = arm_joint_names(self.arm_id)
        self.fingers = finger_joint_names(self.arm_id)
        self.use_gripper = policy.cfg.model.action_dim > 7
        self.dt = p("control_period_s") or 1.0 / control_rate_hz(policy.ckpt.meta)
        self.mode = p("execution_mode")
        self.closed_loop = ClosedLoopExecutor(
            self.arm_id,
            self.dt,
            policy.chunk_size,
            policy.cfg.model.action_dim,
            mode=self.mode,
            ensemble_m=p("ensemble_m"),
            horizon=p("ensemble_horizon"),
            max_jump=p("max_jump_rad"),
            min_lead=p("min_lead_s"),
            velocity_scale=p("velocity_scale"),
            acceleration_scale=p("acceleration_scale"),
            tcp_floor_z=tcp_floor(p("table_z"), p("tcp_to_fingertip_m"), p("fingertip_clearance_m"))
            if p("fingertip_floor")
            else None,
            workspace=(p("workspace_min_xyz"), p("workspace_max_xyz")) if p("workspace_box") else None,
        )
        self.max_age = p("max_obs_age_s")
        self.max_joint_age = p("max_joint_state_age_s")
        # read once: the control cycle does not look parameters up
        self.expected_size = (p("expected_image_width"), p("expected_image_height"))
        self.gripper_squeeze = p("gripper_squeeze_m")
        self.gripper_min_change = p("gripper_min_change_m")
        self._rgb_cache: tuple[Image | None, np.ndarray | None] = (None, None)  # camera 30 Hz, cycles 67 Hz
        self._frame_key: tuple[Image, Image | None] | None = None  # (colour, depth) messages of the last cycle

        self._image: tuple[Image, float] | None = None  # (message, receive time)
        self._depth: tuple[Image, float] | None = None
        self._joints: tuple[np.ndarray, float, float] | None = None  # (q7, stamp, receive time)
        self._fingers: tuple[float, float] | None = None  # (width, stamp)
        self._joint_error: str | None = None
        self.enabled = bool(p("start_enabled"))
        self.hold_reason = "disabled" if not self.enabled else "waiting for first cycle"
        self._holding = True
        self._pending_instruction: str | None = p("instruction") or None
        self._last_gripper: float | None = None
        self._grasp_status = ""
        self._armed_at = float("-inf")  # `~/enable` time: no chunk from a frame taken before it
        self.cycles = 0
        self.commands = 0
        self.stops = 0  # braking trajectories sent on entering a hold
        self.latency = LatencyWindow()
        self.e2e_latency = LatencyWindow()
        self._publish_times: collections.deque[float] = collections.deque(maxlen=200)

        sensor = qos_profile_sensor_data
        sensors = MutuallyExclusiveCallbackGroup()  # separable from the control timer if run multi-threaded
        self.create_subscription(Image, p("image_topic"), self._on_image, sensor, callback_group=sensors)
        if policy.cfg.vision.use_depth:
            self.create_subscription(Image, p("depth_topic"), self._on_depth, sensor, callback_group=sensors)
        self.create_subscription(JointState, p("joint_states_topic"), self._on_joints, sensor, callback_group=sensors)
        gripper_topic = p("gripper_namespace").rstrip("/") + "/joint_states"
        if self.use_gripper:
            self.create_subscription(JointState, gripper_topic, self._on_gripper, sensor, callback_group=sensors)
        self.create_subscription(String, "~/instruction", self._on_instruction, 10)
        self.dry_run = bool(p("dry_run"))
        self.traj_pub = self.create_publisher(
            JointTrajectory, "~/dry_run_trajectory" if self.dry_run else p("trajectory_topic"), 10
        )
        if self.dry_run:
            self.enabled = True
            self.hold_reason = "waiting for first cycle"
        self.status_pub = self.create_publisher(DiagnosticArray, "~/status", 10)
        self._ccol_msgs = _import_ccol_msgs()
        if self._ccol_msgs is not None:
            status_t, chunk_t = self._ccol_msgs
            self.policy_status_pub = self.create_publisher(status_t, "~/policy_status", 10)
            self.chunk_pub = self.create_publisher(chunk_t, "~/action_chunk", 10)
        else:
            self.get_logger().info("ccol_msgs is not installed: status on ~/status (diagnostic_msgs) only")
        self._gripper_pub = None
        self.gripper: FrankaGripper | None = None
        self.gripper_mode = p("gripper_mode") if self.use_gripper else "off"
        if self.gripper_mode == "action":
            self.gripper = FrankaGripper(
                self,
                p("gripper_namespace"),
                force=p("gripper_force_n"),
                epsilon_inner=p("gripper_epsilon_inner_m"),
                epsilon_outer=p("gripper_epsilon_outer_m"),
                speed=p("gripper_speed_mps"),
                min_change=self.gripper_min_change,
                grasp_width=p("gripper_grasp_width_m"),
                max_width=self.closed_loop.limiter.limits.gripper_max_width,
            )
        elif self.gripper_mode == "topic":
            self._gripper_pub = self.create_publisher(Float64, p("gripper_command_topic"), 10)
        elif self.gripper_mode != "off":
            raise ValueError(f"gripper_mode must be 'action', 'topic' or 'off', got {self.gripper_mode!r}")
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_timer(1.0 / p("rate_hz"), self._cycle)
        self.create_timer(1.0 / p("status_rate_hz"), self._publish_status)
        floor = (
            f"fingertips kept {1000 * p('fingertip_clearance_m'):.0f} mm above table_z {p('table_z')} m"
            if self.closed_loop.floor is not None
            else "no fingertip floor (fingertip_floor false)"
        )
        armed = "ENABLED" if self.enabled else "disabled: call ~/enable (std_srvs/SetBool) to arm"
        ready = f"policy ready: {policy.describe()} dt={self.dt:.4f}s mode={self.mode}"
        self.get_logger().info(f"{ready}; {floor}; {armed}")

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    @staticmethod
    def _stamp(msg: Any) -> float:
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def _on_image(self, msg: Image) -> None:
        self._image = (msg, self._now())

    def _on_depth(self, msg: Image) -> None:
        self._depth = (msg, self._now())

    def _on_joints(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in self.arm_joints if n not in index]
        if missing:
            self._joint_error = (
                f"joint names do not match arm_id {self.arm_id!r}: missing {missing} in {list(msg.name)}"
            )
            return
        if len(msg.position) < len(msg.name):
            self._joint_error = "joint state has fewer positions than names"
            return
        self._joint_error = None
        q = np.array([msg.position[index[n]] for n in self.arm_joints], np.float64)
        self._joints = (q, self._stamp(msg), self._now())
        if all(f in index for f in self.fingers):
            self._fingers = (sum(msg.position[index[f]] for f in self.fingers), self._stamp(msg))

    def _on_gripper(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(f in index for f in self.fingers) and len(msg.position) >= len(msg.name):
            self._fingers = (sum(msg.position[index[f]] for f in self.fingers), self._stamp(msg))

    def _on_instruction(self, msg: String) -> None:
        self._pending_instruction = msg.data

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if self.dry_run:
            response.success, response.message = False, "dry_run: this node never commands the robot"
            return response
        self.enabled = bool(request.data)
        self.closed_loop.restart()
        self._armed_at = self._now()  # frames taken before this moment may show another scene (a guided arm)
        if not self.enabled:
            self._hold("disabled")
        response.success = True
        response.message = "enabled" if self.enabled else "disabled"
        self.get_logger().info(f"policy {response.message}")
        return response

    # ------------------------------------------------------------------ cycle
    def _age(self, stamp: float, received: float, now: float) -> float:
        return now - (stamp if stamp > 0 else received)

    def _observation(self, now: float) -> tuple[np.ndarray, np.ndarray, dict | None, float]:
        """Fresh, valid (image, qpos, depth, image stamp) or ObservationError saying what is wrong."""
        if self._joint_error:
            raise ObservationError(self._joint_error)
        if self._image is None:
            raise ObservationError("no image received yet")
        if self._joints is None:
            raise ObservationError("no joint state received yet")
        img_msg, img_rx = self._image
        img_stamp = self._stamp(img_msg)
        if (img_stamp if img_stamp > 0 else img_rx) < self._armed_at:
            raise ObservationError("waiting for a camera frame taken after enabling")
        age = self._age(img_stamp, img_rx, now)
        if age > self.max_age:
            raise ObservationError(f"camera image is {age:.3f}s old (max_obs_age_s {self.max_age})")
        q7, q_stamp, q_rx = self._joints
        age = self._age(q_stamp, q_rx, now)
        if age > self.max_joint_age:
            raise ObservationError(f"joint state is {age:.3f}s old (max_joint_state_age_s {self.max_joint_age})")
        if not np.isfinite(q7).all():
            raise ObservationError("joint state contains NaN or inf")
        w, h = self.expected_size
        if (w and img_msg.width != w) or (h and img_msg.height != h):
            raise ObservationError(f"image is {img_msg.width}x{img_msg.height}, expected {w}x{h}")
        if self._rgb_cache[0] is not img_msg:  # decode each frame once, not once per cycle
            self._rgb_cache = (
                img_msg,
                image_to_rgb(img_msg.encoding, img_msg.height, img_msg.width, img_msg.step, img_msg.data),
            )
        rgb = self._rgb_cache[1]
        frame = (img_msg, self._depth[0] if self._depth is not None else None)
        if self._frame_key is None or any(a is not b for a, b in zip(frame, self._frame_key)):
            self._frame_key = frame  # a new object only for new frames: the policy reuses their visual tokens
        qpos = q7
        if self.use_gripper:
            if self._fingers is None:
                raise ObservationError("no gripper joint state received yet")
            width, stamp = self._fingers
            if stamp > 0 and now - stamp > self.max_age:
                raise ObservationError(f"gripper state is {now - stamp:.3f}s old (max_obs_age_s {self.max_age})")
            qpos = np.append(q7, width)
        depth = None
        if self.policy.cfg.vision.use_depth:
            if self._depth is None:
                raise ObservationError("no depth image received yet")
            d_msg, d_rx = self._depth
            if self._age(self._stamp(d_msg), d_rx, now) > self.max_age:
                raise ObservationError("depth image is stale")
            depth = {
                self.policy.cameras[0]: depth_to_metres(
                    d_msg.encoding, d_msg.height, d_msg.width, d_msg.step, d_msg.data
                )
            }
        return rgb, qpos, depth, img_stamp

    def _hold(self, reason: str) -> None:
        if reason != self.hold_reason:
            self.get_logger().warning(f"holding: {reason}", throttle_duration_sec=2.0)
        self.hold_reason = reason
        if not self._holding:
            self._holding = True
            now = self._now()
            stop = self.closed_loop.stop(now)
            if stop is not None and not self.dry_run:
                self._publish_points(stop, now)
                self.stops += 1

    def _cycle(self) -> None:
        self.cycles += 1
        if self._pending_instruction is not None:
            text, self._pending_instruction = self._pending_instruction, None
            try:
                unknown = self.policy.set_instruction(text)
                self.closed_loop.restart()
                self.get_logger().info(f"instruction: {text!r}" + (f" (unknown words {unknown})" if unknown else ""))
            except ValueError as exc:
                self._hold(f"instruction rejected: {exc}")
                return
        if not self.enabled:
            self._hold("disabled")
            return
        if self.policy.instruction is None:
            self._hold("no instruction: set the 'instruction' parameter or publish on ~/instruction")
            return
        now = self._now()
        try:
            rgb, qpos, depth, img_stamp = self._observation(now)
            t0 = time.perf_counter()
            chunk = self.policy.predict_chunk(rgb, qpos, depth=depth, frame_key=self._frame_key)  # rejects NaN
            inference_s = time.perf_counter() - t0
        except ObservationError as exc:
            self._hold(str(exc))
            return
        self.latency.add(inference_s)
        self._record_chunk(chunk, img_msg_stamp=self._image[0].header.stamp, inference_s=inference_s)
        now = self._now()  # the message's time: after inference, so that its points' times are right on receipt
        command, reason = self.closed_loop.step(now, chunk, qpos)
        if reason:
            self._hold(reason)
            return
        self._publish_points(command, now)
        self.commands += 1
        self._holding = False
        self.hold_reason = ""
        self._publish_times.append(time.perf_counter())
        if command.gripper is not None and not self.dry_run:
            self._command_gripper(command.gripper, self._fingers[0])
        self.e2e_latency.add(self._now() - (img_stamp if img_stamp > 0 else now))

    def _publish_points(self, command: Command, now: float) -> None:
        self.traj_pub.publish(trajectory_message(self.arm_joints, command, now))

    def _record_chunk(self, chunk: np.ndarray, img_msg_stamp: Any, inference_s: float) -> None:
        if self._ccol_msgs is None:
            return
        msg = self._ccol_msgs[1]()
        msg.header.stamp = img_msg_stamp
        msg.instruction = self.policy.instruction or ""
        msg.joint_names = [*self.arm_joints, *(["gripper_width"] if self.use_gripper else [])]
        msg.chunk_size, msg.action_dim = int(chunk.shape[0]), int(chunk.shape[1])
        msg.actions = chunk.astype(np.float32).ravel().tolist()
        msg.control_period_s = float(self.dt)
        msg.inference_ms = float(inference_s * 1000)
        self.chunk_pub.publish(msg)

    def _command_gripper(self, width: float, measured: float) -> None:
        if self.gripper is not None:
            self.gripper.command(width, measured)
            if self.gripper.error:
                self.get_logger().warning(self.gripper.error, throttle_duration_sec=5.0)
            if self.gripper.grasp_status != self._grasp_status:
                self._grasp_status = self.gripper.grasp_status
                if self.gripper.grasp_missed:
                    self.get_logger().warning(f"grasp {self._grasp_status}")
        elif self._gripper_pub is not None:
            width = gripper_command(width, measured, self.gripper_squeeze)
            if self._last_gripper is None or abs(width - self._last_gripper) >= self.gripper_min_change:
                self._last_gripper = width
                self._gripper_pub.publish(Float64(data=width))

    # ------------------------------------------------------------------ status
    def achieved_rate(self) -> float:
        times = self._publish_times
        if len(times) < 2 or time.perf_counter() - times[-1] > 1.0:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def status(self) -> NodeStatus:
        return NodeStatus(
            enabled=self.enabled,
            holding=self._holding,
            hold_reason=self.hold_reason,
            instruction=self.policy.instruction or "",
            achieved_rate_hz=self.achieved_rate(),
            inference_ms_median=1000 * self.latency.median(),
            inference_ms_p99=1000 * self.latency.p99(),
            stamp_to_publish_ms_median=1000 * self.e2e_latency.median(),
            commands_published=self.commands,
            execution_mode=self.mode,
            targets_raised_to_floor=self.closed_loop.raised,
            device=str(self.policy.device),
            gripper=self.gripper_mode
            if self.gripper is None
            else ("ok" if self.gripper.available() else self.gripper.error),
            grasp="" if self.gripper is None else self.gripper.grasp_status,
            grasp_misses=0 if self.gripper is None else self.gripper.grasp_misses,
        )

    def _publish_status(self) -> None:
        status = self.status()
        diagnostic = DiagnosticStatus(
            name="ccol_policy",
            hardware_id=self.arm_id,
            level=DiagnosticStatus.OK if not status.holding else DiagnosticStatus.WARN,
            message="running" if not status.holding else f"holding: {status.hold_reason}",
            values=[KeyValue(key=k, value=v) for k, v in status.key_values().items()],
        )
        arr = DiagnosticArray(status=[diagnostic])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(arr)
        if self._ccol_msgs is not None:
            msg = status.to_message(self._ccol_msgs[0])
            msg.header.stamp = arr.header.stamp
            self.policy_status_pub.publish(msg)

    def stop(self) -> bool:
        """Disable and make the controller brake to rest (on shutdown); whether a stop was sent (False: the plan
        was at rest already, or nothing was ever sent)."""
        stops = self.stops
        self.enabled = False
        self._hold("shutting down")
        return self.stops > stops


def main(argv: list[str] | None = None) -> int:
    # rclpy's own SIGINT handler shuts the context down before any code of ours runs, and a stop can no longer be
    # published: the node takes SIGINT and SIGTERM itself, brakes, and only then shuts down.
    rclpy.init(args=argv if argv is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = PolicyNode()
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError) as exc:
        rclpy.logging.get_logger("policy_node").fatal(str(exc))
        rclpy.try_shutdown()
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    executor = SingleThreadedExecutor()  # extra executor threads fight the inference for the GIL (measured)
    executor.add_node(node)
    try:
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        if rclpy.ok():
            if node.stop():
                node.get_logger().info("stopped: braking sent to the controller")
                time.sleep(0.2)  # let DDS deliver it before the context closes
            else:
                node.get_logger().info("stopped: the arm was at rest")
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
