"""ros2 launch ccol_bringup record.launch.py instruction:="lift the pen" output_dir:=~/ccol_data/pen robot_ip:=IP

Starts recorder_node (its parameter defaults are in ccol_teleop/recorder_node.py) with the topic names of the robot
row (`robot_type`: fr3 with franka_ros2, panda with multipanda_ros2); with `robot_ip` also the upstream driver, and
spawns the gravity compensation controller for kinesthetic teaching (unloaded again when this launch stops, so
policy.launch.py can take the arm); realsense-ros when installed (4.x: the argument names and image topics of the
installed version, ccol_bringup.robot.realsense_wiring), or use_realsense_ros:=false to capture the D435i with
pyrealsense2 inside the recorder; use_sim:=true records from the ccol_sim simulator's scripted teacher instead.
"""

from ccol_bringup.robot import driver_include, realsense_include, spawn_controller
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, LogInfo, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ccol_bringup import package_share
from ccol_policy.robots import profile_for

DEFAULT_COLOR_TOPIC = "/camera/camera/color/image_raw"  # recorder_node's and `ccol build-dataset`'s default

ARGS = {
    "instruction": ("", "task being demonstrated, e.g. 'lift the pen'"),
    "output_dir": ("~/ccol_data/episodes", "where episode bags are written"),
    "robot_type": ("", "fr3 (franka_ros2) or panda (multipanda_ros2); empty: fr3, or panda with use_sim"),
    "robot_ip": ("", "robot IP: start the upstream driver here; empty: the driver runs elsewhere"),
    "spawn_controller": ("true", "spawn the gravity compensation controller (needs the driver's controller_manager)"),
    "use_realsense_ros": ("true", "start realsense2_camera; false: capture with pyrealsense2 in the recorder"),
    "record_depth": ("false", "also record aligned depth"),
    "use_sim": ("false", "record from the ccol_sim MuJoCo Panda with its scripted teacher"),
}


def _setup(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGS}
    actions = []
    camera = None  # realsense-ros started here: its topics
    record_depth = arg["record_depth"].lower() == "true"
    direct = False
    use_sim = arg["use_sim"].lower() == "true"
    robot_type = arg["robot_type"] or ("panda" if use_sim else "fr3")
    profile = profile_for(robot_type)
    if use_sim:
        sim = package_share("ccol_sim")
        if sim is None:
            raise RuntimeError("use_sim:=true needs the ccol_sim package (colcon build it)")
        actions.append(
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(f"{sim}/launch/sim.launch.py"),
                launch_arguments={
                    "robot_type": robot_type,
                    "mode": "kinesthetic",
                    "instruction": arg["instruction"],
                }.items(),
            )
        )
    else:
        actions += driver_include(robot_type, arg["robot_ip"])
        if arg["spawn_controller"].lower() == "true":
            actions.append(spawn_controller(robot_type, profile.gravity_controller))
        realsense = package_share("realsense2_camera")
        if arg["use_realsense_ros"].lower() == "true":
            if realsense is None:
                raise RuntimeError(
                    "use_realsense_ros:=true but realsense2_camera is not installed "
                    "(apt install ros-$ROS_DISTRO-realsense2-camera, or use_realsense_ros:=false)"
                )
            included, camera = realsense_include(realsense)
            actions += included
            if camera.color_topic != DEFAULT_COLOR_TOPIC:
                actions.append(
                    LogInfo(
                        msg=f"ccol_bringup: episode bags get the images under {camera.color_topic}: pass "
                        f"--color-topic {camera.color_topic} --depth-topic {camera.depth_topic} to ccol build-dataset"
                    )
                )
        else:
            direct = True
    overrides = {
        "instruction": arg["instruction"],
        "output_dir": arg["output_dir"],
        "arm_id": robot_type,
        "joint_states_topic": profile.joint_states_topic,
        "joint_states_rate_hz": profile.joint_states_rate_hz,
        "gripper_namespace": profile.gripper_namespace,
        "gripper_rate_hz": profile.gripper_rate_hz,
        "gripper_control": not use_sim,
        "record_depth": record_depth,
        "direct_capture": direct,
    }
    if camera is not None:  # the installed realsense-ros' topics (before 4.55: /camera/color/...)
        overrides["color_topic"] = camera.color_topic
        overrides["color_info_topic"] = camera.color_info_topic
        overrides["depth_topic"] = camera.depth_topic
    actions.append(
        Node(
            package="ccol_teleop",
            executable="recorder_node",
            name="recorder_node",
            output="screen",
            emulate_tty=True,
            parameters=[overrides],
        )
    )
    return actions


def generate_launch_description():
    declared = [DeclareLaunchArgument(name, default_value=d, description=doc) for name, (d, doc) in ARGS.items()]
    return LaunchDescription([*declared, OpaqueFunction(function=_setup)])
