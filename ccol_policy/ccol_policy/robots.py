"""The robot rows we support and the names their upstream drivers use (checked in the drivers' sources).

| robot | driver | distro | launch file | joints | gripper |
| FR3 | franka_ros2 >= v2.1 (Humble) / v3.0 (Jazzy) | Humble, Jazzy | franka_bringup/launch/franka.launch.py |
  fr3_joint1..7 | /franka_gripper |
| Panda | multipanda_ros2 | Humble | franka_bringup/launch/real/franka.launch.py | panda_joint1..7 | /panda_gripper |

Both drivers remap the controller manager's `joint_states` to `/franka/joint_states` (joint_state_broadcaster at
the 1 kHz update rate); `/joint_states` is joint_state_publisher's 30 Hz merge of arm and gripper.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # multipanda_ros2: its controllers.yaml defines joint_trajectory_controller (not spawned by its launch file);
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


def profile_for(robot_type: str) -> DriverProfile:
    """The driver row of a robot; prefixed multi-arm ids ("left_fr3") use their model's row."""
    for model, profile in PROFILES.items():
        if robot_type == model or robot_type.endswith("_" + model):
            return profile
    raise ValueError(f"unknown robot_type {robot_type!r}: use 'fr3' (franka_ros2) or 'panda' (multipanda_ros2)")


def franka_launch_robot_argument(franka_ros2_version: str) -> str:
    """franka.launch.py names the robot `robot_type` since v2.5.0 (Humble) / v3.2.0 (Jazzy), `arm_id` before."""
    major, minor = (int(x) for x in franka_ros2_version.split(".")[:2])
    if (major == 2 and minor >= 5) or (major == 3 and minor >= 2) or major > 3:
        return "robot_type"
    if (major, minor) < (2, 1):
        raise ValueError(
            f"franka_ros2 {franka_ros2_version} has no controllers_yaml launch argument (added in v2.1.0); "
            "update franka_ros2"
        )
    return "arm_id"


# The ccol_sim MuJoCo Panda's hand (gymnasium-robotics' Panda MJCF): its end-effector site is the arm's TCP (within
# 0.3 mm of Franka's hand_tcp); its fingers are longer than the Franka Hand's. Used by the simulator's teacher and
# by policy.launch.py use_sim:=true (policy_node's tcp_to_fingertip_m).
SIM_HAND_TCP_TO_PAD_M = 0.03  # TCP to the middle of the finger pads (m)
SIM_HAND_TCP_TO_TIP_M = 0.05  # TCP to the fingertips (m)
