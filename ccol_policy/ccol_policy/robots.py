"""Robot facts, without ROS or torch: the robot rows we support and the names their upstream drivers use (checked
in the drivers' sources), joint names, joint limits and the hand's geometry. The node, the recorder, the simulator
and the launch files read them from here.

| robot | driver | distro | launch file | joints | gripper |
| FR3 | franka_ros2 >= v2.0.3 (Humble) / v3.0 (Jazzy) | Humble, Jazzy | franka_bringup/launch/franka.launch.py |
  fr3_joint1..7 | /franka_gripper |
| Panda | multipanda_ros2 | Humble | franka_bringup/launch/real/franka.launch.py | panda_joint1..7 | /panda_gripper |

Both drivers remap the controller manager's `joint_states` to `/franka/joint_states` (joint_state_broadcaster at
the 1 kHz update rate); `/joint_states` is joint_state_publisher's 30 Hz merge of arm and gripper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DriverProfile:
    driver: str  # "franka_ros2" or "multipanda_ros2"
    robot_type: str  # joint-name prefix: "fr3" or "panda"
    launch_file: str  # inside the driver's franka_bringup share directory
    joint_states_topic: str  # high-rate measured joints
    joint_states_rate_hz: float
    gripper_namespace: str  # franka_gripper node: joint_states and the move/grasp/homing actions
    gripper_rate_hz: float  # its state_publish_rate
    trajectory_controller: str  # JointTrajectoryController that policy_node streams to
    gravity_controller: str  # spawned for kinesthetic teaching

    @property
    def gripper_joint_states_topic(self) -> str:
        return f"{self.gripper_namespace}/joint_states"

    @property
    def trajectory_topic(self) -> str:
        return f"/{self.trajectory_controller}/joint_trajectory"


PROFILES: dict[str, DriverProfile] = {
    # franka_ros2: franka.launch.py spawns only the broadcasters; our controllers.yaml (controllers_yaml:=) adds
    # the JointTrajectoryController; franka_gripper/config/franka_gripper_node.yaml: state_publish_rate 15
    "fr3": DriverProfile(
        driver="franka_ros2",
        robot_type="fr3",
        launch_file="launch/franka.launch.py",
        joint_states_topic="/franka/joint_states",
        joint_states_rate_hz=1000.0,
        gripper_namespace="/franka_gripper",
        gripper_rate_hz=15.0,
        trajectory_controller="joint_trajectory_controller",
        gravity_controller="gravity_compensation_example_controller",
    ),
    # multipanda_ros2: its controllers.yaml types joint_trajectory_controller with a plugin that no longer exists (and
    # its launch does not spawn it); ours (ccol_bringup controllers_panda.yaml) goes to the spawner as --param-file;
    # its franka_gripper_node.yaml: panda_gripper state_publish_rate 50
    "panda": DriverProfile(
        driver="multipanda_ros2",
        robot_type="panda",
        launch_file="launch/real/franka.launch.py",
        joint_states_topic="/franka/joint_states",
        joint_states_rate_hz=1000.0,
        gripper_namespace="/panda_gripper",
        gripper_rate_hz=50.0,
        trajectory_controller="joint_trajectory_controller",
        gravity_controller="gravity_compensation_example_controller",
    ),
}


def robot_model(arm_id: str) -> str | None:
    """The model ("fr3" or "panda") of an arm id; prefixed multi-arm ids ("left_fr3", franka_ros2's arm_prefix)
    name their model. None for anything else."""
    for model in PROFILES:
        if arm_id == model or arm_id.endswith("_" + model):
            return model
    return None


def profile_for(robot_type: str) -> DriverProfile:
    """The driver row of a robot; prefixed multi-arm ids ("left_fr3") use their model's row."""
    model = robot_model(robot_type)
    if model is not None:
        return PROFILES[model]
    raise ValueError(f"unknown robot_type {robot_type!r}: use 'fr3' (franka_ros2) or 'panda' (multipanda_ros2)")


def franka_launch_arguments(launch_text: str) -> set[str]:
    """The launch arguments a franka.launch.py reads (`LaunchConfiguration('name')` or `DeclareLaunchArgument(
    'name'` with a literal name), from the file's text."""
    return set(re.findall(r"(?:LaunchConfiguration|DeclareLaunchArgument)\(\s*['\"]([A-Za-z_]\w*)['\"]", launch_text))


def franka_launch_robot_argument(launch_arguments: set[str], franka_ros2_version: str = "?") -> str:
    """The name under which the installed franka.launch.py takes the robot: `robot_type` or `arm_id`. Decided from
    the launch file's own arguments (`franka_launch_arguments`), because package.xml does not tell the versions
    apart (read from each tag's franka_bringup/launch/franka.launch.py and package.xml):

    | tags            | package.xml      | robot argument | controllers_yaml argument |
    | v2.0.0-v2.0.2   | 1.0.0, 2.0.2     | arm_id         | no                        |
    | v2.0.3-v2.1.0   | 2.0.2, 2.1.0     | arm_id         | yes                       |
    | v2.2.0-v2.5.0   | 2.2.0-2.5.0      | robot_type     | yes                       |
    | v3.0.0          | 2.0.2 (sic)      | arm_id         | yes                       |
    | v3.1.0-v3.1.1   | 3.1.0            | arm_id         | yes                       |
    | v3.2.0-v3.4.0   | 3.2.0-3.4.0      | robot_type     | yes                       |

    `franka_ros2_version` (its package.xml) only goes into the error message."""
    if "controllers_yaml" not in launch_arguments:
        raise ValueError(
            f"franka_ros2 {franka_ros2_version}: franka.launch.py takes no controllers_yaml argument (added in v2.0.3 "
            "/ v3.0.0); update franka_ros2"
        )
    for name in ("robot_type", "arm_id"):
        if name in launch_arguments:
            return name
    raise ValueError(
        f"franka_ros2 {franka_ros2_version}: franka.launch.py takes neither robot_type nor arm_id "
        f"(it reads {sorted(launch_arguments)})"
    )


# The ccol_sim MuJoCo Panda's hand (gymnasium-robotics' Panda MJCF): its end-effector site is the arm's TCP (within
# 0.3 mm of Franka's hand_tcp); its fingers are longer than the Franka Hand's. Used by the simulator's teacher and
# by policy.launch.py use_sim:=true (policy_node's tcp_to_fingertip_m).
SIM_HAND_TCP_TO_PAD_M = 0.03  # TCP to the middle of the finger pads (m)
SIM_HAND_TCP_TO_TIP_M = 0.05  # TCP to the fingertips (m)


# Franka Hand: the fingertips' lowest point below hand_tcp (franka_description end_effectors/common/
# franka_hand.xacro: finger joints at z 0.0584, fingertip box centre +0.04525, half height 0.00925; TCP at 0.1034)
FRANKA_HAND_TCP_TO_TIP_M = 0.0095


@dataclass(frozen=True)
class ArmLimits:
    lower: np.ndarray  # (7,) rad
    upper: np.ndarray  # (7,) rad
    velocity: np.ndarray  # (7,) rad/s
    acceleration: np.ndarray  # (7,) rad/s^2
    gripper_max_width: float = 0.08  # m (Franka Hand)


# Franka datasheets (Panda: "Robot and interface specifications"; FR3: "Franka Research 3" datasheet).
LIMITS: dict[str, ArmLimits] = {
    "panda": ArmLimits(
        lower=np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]),
        upper=np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]),
        velocity=np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]),
        acceleration=np.array([15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0]),
    ),
    "fr3": ArmLimits(
        lower=np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159]),
        upper=np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159]),
        velocity=np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26]),
        acceleration=np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]),
    ),
}


def _fr3_velocity_limits(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """libfranka's FR3 joint velocity limits at position q (rad/s): `computeLowerLimitsJointVelocity` /
    `computeUpperLimitsJointVelocity` of include/franka/rate_limiting.h (0.20.x; the same formulas as
    `Robot::getUpperJointVelocityLimits` with the FR3's URDF parameters), less its 1e-3 tolerance. They fall to 0 at
    the joint limits: the speed from which the joint can still brake."""
    q = np.asarray(q, np.float64)[:7]
    v_max = np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26])
    offset = np.array([0.30, 0.20, 0.20, 0.30, 0.35, 0.35, 0.35])
    gain = np.array([12.0, 5.17, 7.00, 8.00, 34.0, 11.0, 34.0])
    upper_q = np.array([2.75010, 1.79180, 2.90650, -0.1458, 2.81010, 4.52050, 3.01960])
    lower_q = np.array([-2.75010, -1.79180, -2.90650, -3.04810, -2.81010, 0.54092, -3.01960])
    tolerance = 1e-3
    upper = np.minimum(v_max, np.maximum(0.0, -offset + np.sqrt(np.maximum(0.0, gain * (upper_q - q))))) - tolerance
    lower = np.maximum(-v_max, np.minimum(0.0, offset - np.sqrt(np.maximum(0.0, gain * (q - lower_q))))) + tolerance
    return lower, upper


def velocity_limits(arm_id: str, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) joint velocity limits (7,) rad/s at joint position q: position-dependent for the FR3
    (libfranka), the datasheet's constants for the Panda."""
    if robot_model(arm_id) == "fr3":
        return _fr3_velocity_limits(q)
    v = limits_for(arm_id).velocity
    return -v, v.copy()


def tcp_floor(table_z: float, tcp_to_tip: float = FRANKA_HAND_TCP_TO_TIP_M, clearance: float = 0.004) -> float:
    """The lowest TCP height (base frame) that keeps the fingertips `clearance` above a table top at `table_z`."""
    if not all(np.isfinite([table_z, tcp_to_tip, clearance])):
        raise ValueError("table_z, tcp_to_fingertip_m and fingertip_clearance_m must be finite numbers")
    return table_z + tcp_to_tip + clearance


def arm_joint_names(arm_id: str) -> list[str]:
    return [f"{arm_id}_joint{i}" for i in range(1, 8)]


def finger_joint_names(arm_id: str) -> list[str]:
    return [f"{arm_id}_finger_joint1", f"{arm_id}_finger_joint2"]


def limits_for(arm_id: str) -> ArmLimits:
    """Limits by arm_id; multi-arm ids like "left_fr3" (franka_ros2's arm_prefix) use their model's limits."""
    model = robot_model(arm_id)
    if model is not None:
        return LIMITS[model]
    raise ValueError(f"unknown arm_id {arm_id!r}: use 'panda' or 'fr3' (or a prefixed id like 'left_fr3')")
