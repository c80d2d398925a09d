"""ros2 launch ccol_bringup policy.launch.py instruction:="lift the pen" checkpoint:=runs/pen/best

Starts policy_node with config/policy.yaml, plus the Franka and RealSense bring-up when those packages are
installed (use_sim:=true starts the ccol_sim simulator instead of both).
"""

import yaml
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ccol_bringup import config_file, package_share

ARGS = {
    "instruction": ("", "task in words, e.g. 'lift the pen'"),
    "checkpoint": ("", "checkpoint directory written by `ccol train` (OUT/best)"),
    "device": ("auto", "auto, cuda or cpu"),
    "rate_hz": ("67.0", "inference and command rate"),
    "arm_id": ("fr3", "fr3 or panda"),
    "robot_ip": ("", "robot IP for franka_bringup; empty: do not start the robot driver"),
    "execution_mode": ("ensemble", "ensemble (temporal ensembling) or chunk"),
    "use_sim": ("false", "run against the ccol_sim MuJoCo Panda instead of the robot"),
    "use_realsense_ros": ("true", "start realsense2_camera when installed"),
}


def _setup(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGS}
    actions = []
    if arg["use_sim"].lower() == "true":
        sim = package_share("ccol_sim")
        if sim is None:
            raise RuntimeError("use_sim:=true needs the ccol_sim package (colcon build it)")
        actions.append(
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(f"{sim}/launch/sim.launch.py"),
                launch_arguments={"arm_id": arg["arm_id"], "mode": "follow"}.items(),
            )
        )
    else:
        franka = package_share("franka_bringup")
        if franka and arg["robot_ip"]:
            actions.append(
                IncludeLaunchDescription(
                    PythonLaunchDescriptionSource(f"{franka}/launch/franka.launch.py"),
                    launch_arguments={
                        "robot_ip": arg["robot_ip"],
                        "arm_id": arg["arm_id"],
                        "load_gripper": "true",
                    }.items(),
                )
            )
        realsense = package_share("realsense2_camera")
        if realsense and arg["use_realsense_ros"].lower() == "true":
            with open(config_file("realsense.yaml")) as f:
                rs_args = {k: str(v) for k, v in yaml.safe_load(f).items()}
            actions.append(
                IncludeLaunchDescription(
                    PythonLaunchDescriptionSource(f"{realsense}/launch/rs_launch.py"), launch_arguments=rs_args.items()
                )
            )
    overrides = {
        "instruction": arg["instruction"],
        "checkpoint": arg["checkpoint"],
        "device": arg["device"],
        "rate_hz": float(arg["rate_hz"]),
        "arm_id": arg["arm_id"],
        "execution_mode": arg["execution_mode"],
    }
    actions.append(
        Node(
            package="ccol_policy",
            executable="policy_node",
            name="policy_node",
            output="screen",
            parameters=[config_file("policy.yaml"), overrides],
        )
    )
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=d, description=doc) for name, (d, doc) in ARGS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])
