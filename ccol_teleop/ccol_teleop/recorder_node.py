"""`recorder_node`: records kinesthetic demonstrations (joint states, gripper, D435i colour/depth) as episodes.

The arm runs in gravity compensation; a person guides it. Episodes are rosbag2 MCAP directories (see
`episodes.py`) with the instruction on `/ccol/instruction` and an `episode.json`.

Control: services `~/start`, `~/stop` (save), `~/stop_failure` (save, success=false), `~/discard`
(std_srvs/Trigger); single keys in the terminal (s start, space/e save, f save as failure, d discard, q quit,
g grasp, o open); a foot pedal or joystick on `joy_topic` (sensor_msgs/Joy: button 0 toggles start/save,
button 1 discards, button 2 toggles grasp/open).

The gripper: the operator's commands (keys, pedal) go to franka_gripper (grasp with force when closing, move when
opening; `gripper_control`) and are logged on `/ccol/gripper_command` (sensor_msgs/JointState, position [width]),
which is recorded: the gripper's action label is what it was told, the measured finger width stays an
observation. Commands published there by another device are recorded too.
The instruction is the `instruction` parameter, changeable at run time (`ros2 param set`).
"""

from __future__ import annotations

import select
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState, Joy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ccol_policy.gripper import FrankaGripper
from ccol_policy.node_parameters import Param, declare_parameters
from ccol_policy.robots import arm_joint_names, finger_joint_names
from ccol_teleop.episodes import GRIPPER_COMMAND_TOPIC, INSTRUCTION_TOPIC, EpisodeWriter, next_index, recover_crashed
from ccol_teleop.monitor import TopicMonitor

COLOR_ENCODINGS = ("rgb8", "bgr8")
DEPTH_ENCODINGS = ("16UC1", "32FC1")

PARAMETERS: dict[str, Param] = {
    "instruction": Param("", "task being demonstrated, e.g. 'lift the pen' (settable while running)"),
    "output_dir": Param("~/ccol_data/episodes", "where episode bags are written"),
    "arm_id": Param("fr3", "fr3 or panda (or a prefixed id like left_fr3): the joint names"),
    "joint_states_topic": Param(
        "/franka/joint_states", "the driver's measured joints (ccol_policy.robots; launch: from robot_type)"
    ),
    "gripper_namespace": Param("/franka_gripper", "franka_gripper node (multipanda_ros2: /panda_gripper)"),
    "record_gripper": Param(True, "record the gripper's joint states and commands"),
    "gripper_control": Param(
        True, "keys/pedal command franka_gripper (grasp/move) and log the command (the gripper label)"
    ),
    "gripper_force_n": Param(40.0, "grasp force when closing (N)"),
    "gripper_speed_mps": Param(0.1, "gripper finger speed (m/s)"),
    "gripper_open_width_m": Param(0.08, "width an open command moves to (m)"),
    "color_topic": Param("/camera/camera/color/image_raw", "colour image (rgb8/bgr8)"),
    "color_info_topic": Param("/camera/camera/color/camera_info", "colour camera info"),
    "record_depth": Param(False, "also record aligned depth"),
    "depth_topic": Param("/camera/camera/aligned_depth_to_color/image_raw", "aligned depth (16UC1/32FC1)"),
    "joint_states_rate_hz": Param(
        1000.0, "nominal joint-state rate (the driver's joint_state_broadcaster): far below it refuses a start"
    ),
    "gripper_rate_hz": Param(15.0, "nominal gripper state rate (franka_gripper state_publish_rate; multipanda: 50)"),
    "camera_rate_hz": Param(30.0, "nominal camera rate (Hz)"),
    "min_rate_fraction": Param(0.5, "a topic below this fraction of its nominal rate refuses a start"),
    "silence_s": Param(1.0, "a topic silent for this long refuses a start (s)"),
    "status_period_s": Param(5.0, "period of the topic-rate status line (s)"),
    "keyboard": Param(True, "single-key control when stdin is a terminal"),
    "joy_topic": Param("", "sensor_msgs/Joy buttons (e.g. /joy for a foot pedal or joystick); empty: none"),
    "direct_capture": Param(False, "capture the D435i with pyrealsense2 instead of subscribing to realsense-ros"),
    "capture_width": Param(640, "direct_capture: colour/depth width (px)"),
    "capture_height": Param(480, "direct_capture: colour/depth height (px)"),
    "capture_fps": Param(30, "direct_capture: frame rate (Hz)"),
    "max_episode_s": Param(600.0, "an episode longer than this is saved automatically (s)"),
}


class RecorderNode(Node):
    def __init__(self, parameter_overrides: dict[str, Any] | None = None) -> None:
        overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
        super().__init__("recorder_node", parameter_overrides=overrides)
        declare_parameters(self, PARAMETERS)
        p = self._param
        self.arm_id = p("arm_id")
        self.arm_joints = arm_joint_names(self.arm_id)
        self.fingers = finger_joint_names(self.arm_id)
        self.out_dir = Path(p("output_dir")).expanduser()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in recover_crashed(self.out_dir):
            self.get_logger().warning(f"episode left by a crash kept as {path}")
        self._next_floor = next_index(self.out_dir)
        self.episode: EpisodeWriter | None = None
        self._lock = threading.Lock()
        self.saved: list[Path] = []

        self.topics = {p("joint_states_topic"): "sensor_msgs/msg/JointState"}
        nominal = {p("joint_states_topic"): p("joint_states_rate_hz")}
        self.gripper_topic = p("gripper_namespace").rstrip("/") + "/joint_states"
        if p("record_gripper"):
            self.topics[self.gripper_topic] = "sensor_msgs/msg/JointState"
            nominal[self.gripper_topic] = p("gripper_rate_hz")
            self.topics[GRIPPER_COMMAND_TOPIC] = "sensor_msgs/msg/JointState"
        self.topics[p("color_topic")] = "sensor_msgs/msg/Image"
        self.topics[p("color_info_topic")] = "sensor_msgs/msg/CameraInfo"
        nominal[p("color_topic")] = p("camera_rate_hz")
        if p("record_depth"):
            self.topics[p("depth_topic")] = "sensor_msgs/msg/Image"
            nominal[p("depth_topic")] = p("camera_rate_hz")
        self.monitor = TopicMonitor(nominal, min_rate_fraction=p("min_rate_fraction"), silence_s=p("silence_s"))
        self._image_checks: dict[str, int] = {}

        # sensor-data QoS (best effort, as the drivers publish) with a deep queue: every message of a 1 kHz joint
        # stream is recorded even when an image write holds the executor for a few milliseconds
        sensor = QoSProfile(
            reliability=qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
            history=HistoryPolicy.KEEP_LAST,
            depth=500,
        )
        self.create_subscription(
            JointState, p("joint_states_topic"), self._joint_cb(p("joint_states_topic"), True), sensor, raw=True
        )
        self.gripper: FrankaGripper | None = None
        self._width = float("nan")  # measured gripper width
        if p("record_gripper"):
            self.create_subscription(
                JointState, self.gripper_topic, self._joint_cb(self.gripper_topic, False), sensor, raw=True
            )
            self.create_subscription(
                JointState, GRIPPER_COMMAND_TOPIC, self._passthrough(GRIPPER_COMMAND_TOPIC), 10, raw=True
            )
            self.command_pub = self.create_publisher(JointState, GRIPPER_COMMAND_TOPIC, 10)
            if p("gripper_control"):
                self.gripper = FrankaGripper(
                    self, p("gripper_namespace"), force=p("gripper_force_n"), speed=p("gripper_speed_mps")
                )
        self.capture = None
        if p("direct_capture"):
            from ccol_teleop.realsense_capture import D435iCapture

            self.capture = D435iCapture(
                p("capture_width"), p("capture_height"), p("capture_fps"), p("record_depth"), self._on_capture
            )
        else:
            self.create_subscription(
                Image, p("color_topic"), self._image_cb(p("color_topic"), COLOR_ENCODINGS), sensor, raw=True
            )
            self.create_subscription(
                CameraInfo, p("color_info_topic"), self._passthrough(p("color_info_topic")), sensor, raw=True
            )
            if p("record_depth"):
                self.create_subscription(
                    Image, p("depth_topic"), self._image_cb(p("depth_topic"), DEPTH_ENCODINGS), sensor, raw=True
                )
        self.create_service(Trigger, "~/start", lambda req, res: self._service(res, self.start))
        self.create_service(Trigger, "~/stop", lambda req, res: self._service(res, lambda: self.stop(True)))
        self.create_service(Trigger, "~/stop_failure", lambda req, res: self._service(res, lambda: self.stop(False)))
        self.create_service(Trigger, "~/discard", lambda req, res: self._service(res, self.discard))
        if p("joy_topic"):
            self._joy_prev: list[int] = []
            self.create_subscription(Joy, p("joy_topic"), self._on_joy, 10)
        self.create_timer(p("status_period_s"), self._status)
        self.add_on_set_parameters_callback(self._on_params)
        self._quit = threading.Event()
        if p("keyboard") and sys.stdin.isatty():
            threading.Thread(target=self._keyboard, daemon=True).start()
            self.get_logger().info(
                "keys: [s] start  [space/e] save  [f] save as failure  [d] discard  [g] grasp  [o] open  [q] quit"
            )
        if self.capture is not None:
            self.capture.start()
        self.get_logger().info(
            f"recording to {self.out_dir}; instruction {p('instruction')!r}; topics {list(self.topics)}"
        )

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _now(self) -> float:
        return time.monotonic()

    # ------------------------------------------------------------------ inputs
    def _write(self, topic: str, raw: bytes) -> None:
        with self._lock:
            if self.episode is None:
                return
            try:
                self.episode.write(topic, self.get_clock().now().nanoseconds, raw)
            except OSError as exc:  # disk full or gone: lose this episode, keep the earlier ones and the node
                self.get_logger().error(f"cannot write {self.episode.name} ({exc}); episode discarded")
                self.episode.discard()
                self.episode = None
                return
            if (self.episode.last_stamp_ns - self.episode.first_stamp_ns) * 1e-9 > self._param("max_episode_s"):
                self.get_logger().warning("episode reached max_episode_s; saving it")
                threading.Thread(target=self.stop, args=(True,), daemon=True).start()

    def _joint_cb(self, topic: str, arm: bool):
        expected = self.arm_joints if arm else self.fingers

        def cb(raw: bytes) -> None:
            msg = deserialize_message(raw, JointState)
            missing = [n for n in expected if n not in msg.name]
            error = (
                f"joint names {list(msg.name)} do not match arm_id {self.arm_id!r} (missing {missing})"
                if missing
                else None
            )
            if error is None and len(msg.position) < len(msg.name):
                error = "fewer positions than joint names"
            if error is None and not arm:
                self._width = float(sum(msg.position[msg.name.index(f)] for f in expected))
            self.monitor.record(topic, self._now(), error)
            self._write(topic, raw)

        return cb

    def _image_cb(self, topic: str, encodings: tuple[str, ...]):
        def cb(raw: bytes) -> None:
            n = self._image_checks.get(topic, 0)
            self._image_checks[topic] = n + 1
            error = self.monitor.topics[topic].error
            if n % 15 == 0:  # decoding every frame costs more than it tells; check the encoding regularly
                msg = deserialize_message(raw, Image)
                error = (
                    None
                    if msg.encoding in encodings
                    else (f"unsupported encoding {msg.encoding!r}; expected one of {list(encodings)}")
                )
            self.monitor.record(topic, self._now(), error)
            self._write(topic, raw)

        return cb

    def _passthrough(self, topic: str):
        return lambda raw: self._write(topic, raw)

    def _on_capture(self, color: Image, depth: Image | None, info: CameraInfo) -> None:
        """Frames from pyrealsense2 (hardware stamps), written under the realsense-ros topic names."""
        self.monitor.record(self._param("color_topic"), self._now())
        self._write(self._param("color_topic"), serialize_message(color))
        self._write(self._param("color_info_topic"), serialize_message(info))
        if depth is not None and self._param("record_depth"):
            self.monitor.record(self._param("depth_topic"), self._now())
            self._write(self._param("depth_topic"), serialize_message(depth))

    def _on_joy(self, msg: Joy) -> None:
        pressed = [int(b) for b in msg.buttons]
        prev = self._joy_prev + [0] * max(0, len(pressed) - len(self._joy_prev))
        self._joy_prev = pressed
        if len(pressed) > 0 and pressed[0] and not prev[0]:
            self._log_result(self.stop(True) if self.episode else self.start())
        if len(pressed) > 1 and pressed[1] and not prev[1]:
            self._log_result(self.discard())
        if len(pressed) > 2 and pressed[2] and not prev[2]:
            closed = self.gripper is not None and self.gripper.state == "grasp"
            self._log_result(self.command_gripper(not closed))

    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == "instruction":
                self.get_logger().info(f"instruction set to {param.value!r} (applies to the next episode)")
            elif param.name in PARAMETERS and param.name != "instruction" and param.name != "max_episode_s":
                return SetParametersResult(successful=False, reason=f"{param.name} can only be set at start-up")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ episodes
    def start(self) -> tuple[bool, str]:
        instruction = str(self._param("instruction")).strip()
        if not instruction:
            return False, "no instruction: ros2 param set /recorder_node instruction 'lift the pen'"
        if self.episode is not None:
            return False, f"already recording {self.episode.name}"
        problems = self.monitor.problems(self._now())
        if problems:
            return False, "not starting: " + "; ".join(problems)
        with self._lock:
            index = next_index(self.out_dir, self._next_floor)
            self._next_floor = index + 1
            meta = {
                "instruction": instruction,
                "arm_id": self.arm_id,
                "topics": self.topics,
                "source": "direct_capture" if self.capture else "ros",
            }
            self.episode = EpisodeWriter(self.out_dir, index, self.topics, meta)
            self.episode.write(
                INSTRUCTION_TOPIC, self.get_clock().now().nanoseconds, serialize_message(String(data=instruction))
            )
        return True, f"recording {self.episode.name}: {instruction!r}"

    def stop(self, success: bool = True) -> tuple[bool, str]:
        with self._lock:
            if self.episode is None:
                return False, "not recording"
            ep, self.episode = self.episode, None
            path = ep.close(success=success)
        self.saved.append(path)
        counts = ", ".join(f"{t.rsplit('/', 1)[-1]}={n}" for t, n in ep.counts.items())
        return True, f"saved {path} (success={success}; {counts})"

    def discard(self) -> tuple[bool, str]:
        with self._lock:
            if self.episode is None:
                return False, "not recording"
            ep, self.episode = self.episode, None
            ep.discard()
        return True, f"discarded {ep.name}"

    def command_gripper(self, close: bool) -> tuple[bool, str]:
        """The operator's gripper command: franka_gripper grasp (close) or move (open), logged as the label."""
        if not self._param("record_gripper"):
            return False, "record_gripper is off"
        width = 0.0 if close else float(self._param("gripper_open_width_m"))
        msg = JointState(name=["gripper_command"], position=[width])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.command_pub.publish(msg)  # recorded through our own subscription, like any other device's
        if self.gripper is None:
            return True, f"gripper command {width:.3f} m logged (gripper_control off)"
        measured = self._width if np.isfinite(self._width) else (0.08 if close else 0.0)
        sent = self.gripper.command(width, measured, always=True)
        if sent is None:
            return False, f"gripper command {width:.3f} m logged but not sent: {self.gripper.error or 'no change'}"
        return True, f"gripper {sent} to {width:.3f} m"

    def _service(self, response: Trigger.Response, action) -> Trigger.Response:  # noqa: ANN001
        response.success, response.message = action()
        self._log_result((response.success, response.message))
        return response

    def _log_result(self, result: tuple[bool, str]) -> None:
        ok, message = result
        if ok:
            self.get_logger().info(message)
        else:
            self.get_logger().warning(message)

    def _status(self) -> None:
        now = self._now()
        state = f"RECORDING {self.episode.name}" if self.episode else "idle"
        problems = self.monitor.problems(now)
        self.get_logger().info(f"{state}; rates: {self.monitor.summary(now)}")
        if problems:
            self.get_logger().warning("; ".join(problems))

    def _keyboard(self) -> None:
        import termios
        import tty

        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not self._quit.is_set() and rclpy.ok():
                if not select.select([sys.stdin], [], [], 0.2)[0]:
                    continue
                key = sys.stdin.read(1).lower()
                actions = {
                    "s": self.start,
                    " ": lambda: self.stop(True),
                    "e": lambda: self.stop(True),
                    "f": lambda: self.stop(False),
                    "d": self.discard,
                    "g": lambda: self.command_gripper(True),
                    "o": lambda: self.command_gripper(False),
                }
                if key == "q":
                    self._quit.set()
                    break
                if key in actions:
                    self._log_result(actions[key]())
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

    def shutdown(self) -> None:
        """Save the episode in progress (marked interrupted) before exiting."""
        if self.capture is not None:
            self.capture.stop()
        with self._lock:
            if self.episode is not None:
                path = self.episode.close(success=False, interrupted=True)
                self.episode = None
                self.get_logger().warning(f"shutdown while recording: saved {path} as unsuccessful/interrupted")


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv if argv is not None else sys.argv)
    try:
        node = RecorderNode()
    except (RuntimeError, OSError, ValueError) as exc:
        rclpy.logging.get_logger("recorder_node").fatal(str(exc))
        rclpy.try_shutdown()
        return 2
    try:
        while rclpy.ok() and not node._quit.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
