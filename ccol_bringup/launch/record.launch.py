"""ros2 launch ccol_bringup record.launch.py instruction:="lift the pen" output_dir:=~/ccol_data/pen

Starts recorder_node with config/record.yaml; with the robot: franka_bringup (put the arm in gravity
compensation, e.g. franka_bringup's gravity_compensation_example_controller) and realsense-ros when installed;
use_realsense_ros:=false captures the D435i with pyrealsense2 inside the recorder; use_sim:=true records from
the ccol_sim simulator with its scripted teacher instead.
"""

import yaml
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ccol_bringup import config_file, package_share

ARGS = {
    "instruction": ("", "task being demonstrated, e.g. 'lift the pen'"),
    "output_dir": ("~/ccol_data/episodes", "where episode bags are written"),
    "arm_id": ("fr3", "fr3 or panda"),
    "robot_ip": ("", "robot IP for franka_bringup; empty: the driver is started elsewhere"),
    "use_realsense_ros": ("true", "start realsense2_camera; false: capture with pyrealsense2 in the recorder"),
    "record_depth": ("false", "also record aligned depth"),
    "use_sim": ("false", "record from the ccol_sim MuJoCo Panda with its scripted teacher"),
}


def _setup(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGS}
    actions = []
    record_depth = arg["record_depth"].lower() == "true"
    direct = False
    if arg["use_sim"].lower() == "true":
        sim = package_share("ccol_sim")
        if sim is None:
            raise RuntimeError("use_sim:=true needs the ccol_sim package (colcon build it)")
        actions.append(
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(f"{sim}/launch/sim.launch.py"),
                launch_arguments={
                    "arm_id": arg["arm_id"],
                    "mode": "kinesthetic",
                    "instruction": arg["instruction"],
                }.items(),
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
        if arg["use_realsense_ros"].lower() == "true":
            if realsense is None:
                raise RuntimeError(
                    "use_realsense_ros:=true but realsense2_camera is not installed "
                    "(apt install ros-$ROS_DISTRO-realsense2-camera, or use_realsense_ros:=false)"
                )
            with open(config_file("realsense.yaml")) as f:
                rs_args = {k: str(v) for k, v in yaml.safe_load(f).items()}
            actions.append(
                IncludeLaunchDescription(
                    PythonLaunchDescriptionSource(f"{realsense}/launch/rs_launch.py"), launch_arguments=rs_args.items()
                )
            )
        else:
            direct = True
    overrides = {
        "instruction": arg["instruction"],
        "output_dir": arg["output_dir"],
        "arm_id": arg["arm_id"],
        "record_depth": record_depth,
        "direct_capture": direct,
    }
    actions.append(
        Node(
            package="ccol_teleop",
            executable="recorder_node",
            name="recorder_node",
            output="screen",
            emulate_tty=True,
            parameters=[config_file("record.yaml"), overrides],
        )
    )
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=d, description=doc) for name, (d, doc) in ARGS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])
