"""Launch wiring of the robot driver rows (see ccol_policy.robots): which upstream launch file, its argument
names for the installed version, our controller configuration and the controller each launch file spawns."""

from __future__ import annotations

import re

from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.actions import Node

from ccol_bringup import config_file, package_share
from ccol_policy.robots import DriverProfile, franka_launch_arguments, franka_launch_robot_argument, profile_for


def package_version(share: str) -> str:
    """The <version> of an installed package's package.xml."""
    with open(f"{share}/package.xml") as f:
        match = re.search(r"<version>\s*([0-9][0-9.]*)\s*</version>", f.read())
    if not match:
        raise RuntimeError(f"{share}/package.xml has no <version>")
    return match.group(1)


def controllers_file(profile: DriverProfile) -> str:
    """Our controller configuration for the driver. franka_ros2 defines no JointTrajectoryController: franka.launch.py
    gets ours as `controllers_yaml`. multipanda_ros2's launch takes no controllers file and types its JTC with a
    plugin that no longer exists: the spawner hands ours over with `--param-file`, which sets the controller's `type`
    and parameters on the controller manager before loading it (ros2_control >= 2.46 on Humble)."""
    return config_file("controllers_fr3.yaml" if profile.driver == "franka_ros2" else "controllers_panda.yaml")


def driver_include(robot_type: str, robot_ip: str) -> list:
    """The upstream bring-up of the arm + gripper with the right argument names, or nothing when robot_ip is empty
    (the driver runs elsewhere; start it with our controllers file, README "On the robot")."""
    if not robot_ip:
        return []
    profile = profile_for(robot_type)
    share = package_share("franka_bringup")
    if share is None:
        raise RuntimeError(
            f"robot_ip is set but franka_bringup is not installed: install {profile.driver} "
            "(README support matrix) or leave robot_ip empty and start the driver yourself"
        )
    args = {"robot_ip": robot_ip, "load_gripper": "true"}
    if profile.driver == "franka_ros2":  # argument names as the installed franka.launch.py reads them
        with open(f"{share}/{profile.launch_file}") as f:
            declared = franka_launch_arguments(f.read())
        args[franka_launch_robot_argument(declared, package_version(share))] = profile.robot_type
        args["controllers_yaml"] = controllers_file(profile)
    return [
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(f"{share}/{profile.launch_file}"), launch_arguments=args.items()
        )
    ]


def spawn_controller(robot_type: str, controller: str) -> Node:
    """controller_manager's spawner for `controller`; unloaded again when the launch stops (--unload-on-kill), so
    record.launch.py (gravity compensation) and policy.launch.py (trajectory controller) can follow each other."""
    profile = profile_for(robot_type)
    arguments = [controller, "--controller-manager", "/controller_manager", "--unload-on-kill"]
    arguments += ["--param-file", controllers_file(profile)]
    return Node(package="controller_manager", executable="spawner", arguments=arguments, output="screen")
