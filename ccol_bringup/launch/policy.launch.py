"""ros2 launch ccol_bringup policy.launch.py instruction:="lift the pen" checkpoint:=runs/pen/best robot_ip:=172.16.0.2

Starts policy_node with config/policy.yaml (deployment overrides of the node's defaults) and the topic names of the
robot row (`robot_type`: fr3 with franka_ros2, panda with multipanda_ros2; see README "Support matrix"); with
`robot_ip` also the upstream driver (franka_bringup, with our controllers file for franka_ros2), realsense-ros when
installed (4.x: the argument names and image topics of the installed version, ccol_bringup.robot.realsense_wiring)
and spawns the arm's joint_trajectory_controller with our controller config as --param-file (unloaded again when
this launch stops). use_sim:=true runs against the ccol_sim MuJoCo Panda instead (robot_type panda, the
multipanda_ros2 names).
"""

from ccol_bringup.robot import driver_include, realsense_include, spawn_controller
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ccol_bringup import config_file, package_share
from ccol_policy.robots import SIM_HAND_TCP_TO_TIP_M, profile_for

ARGS = {
    "instruction": ("", "task in words, e.g. 'lift the pen'"),
    "checkpoint": ("", "checkpoint directory written by `ccol train` (OUT/best)"),
    "device": ("auto", "auto, cuda or cpu"),
    "rate_hz": ("67.0", "inference and command rate"),
    "robot_type": ("", "fr3 (franka_ros2) or panda (multipanda_ros2); empty: fr3, or panda with use_sim"),
    "robot_ip": ("", "robot IP: start the upstream driver here; empty: the driver runs elsewhere"),
    "spawn_controller": ("true", "spawn joint_trajectory_controller (needs the driver's controller_manager)"),
    "execution_mode": ("ensemble", "ensemble (temporal ensembling) or chunk"),
    "table_z": ("0.0", "table top in the arm's base frame (m): the fingertips are kept above it; 0: arm on the table"),
    "fingertip_floor": ("true", "false: no fingertip floor"),
    "use_sim": ("false", "run against the ccol_sim MuJoCo Panda instead of the robot"),
    "use_realsense_ros": ("true", "start realsense2_camera when installed"),
}


def _setup(context):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGS}
    use_sim = arg["use_sim"].lower() == "true"
    robot_type = arg["robot_type"] or ("panda" if use_sim else "fr3")
    profile = profile_for(robot_type)
    actions = []
    camera = None  # realsense-ros started here: its topics
    if use_sim:
        sim = package_share("ccol_sim")
        if sim is None:
            raise RuntimeError("use_sim:=true needs the ccol_sim package (colcon build it)")
        actions.append(
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(f"{sim}/launch/sim.launch.py"),
                launch_arguments={"robot_type": robot_type, "mode": "follow"}.items(),
            )
        )
    else:
        actions += driver_include(robot_type, arg["robot_ip"])
        if arg["spawn_controller"].lower() == "true":
            actions.append(spawn_controller(robot_type, profile.trajectory_controller))
        realsense = package_share("realsense2_camera")
        if realsense and arg["use_realsense_ros"].lower() == "true":
            included, camera = realsense_include(realsense)
            actions += included
    overrides = {
        "instruction": arg["instruction"],
        "checkpoint": arg["checkpoint"],
        "device": arg["device"],
        "rate_hz": float(arg["rate_hz"]),
        "arm_id": robot_type,
        "joint_states_topic": profile.joint_states_topic,
        "gripper_namespace": profile.gripper_namespace,
        "trajectory_topic": profile.trajectory_topic,
        "gripper_mode": "topic" if use_sim else "action",
        "execution_mode": arg["execution_mode"],
        "table_z": float(arg["table_z"]),
        "fingertip_floor": arg["fingertip_floor"].lower() == "true",
    }
    if camera is not None:  # the installed realsense-ros' topics (before 4.55: /camera/color/...)
        overrides["image_topic"] = camera.color_topic
        overrides["depth_topic"] = camera.depth_topic
    if use_sim:
        overrides["tcp_to_fingertip_m"] = SIM_HAND_TCP_TO_TIP_M  # the simulated hand's fingers are longer
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
