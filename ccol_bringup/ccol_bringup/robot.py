"""Launch wiring of the robot driver rows (see ccol_policy.robots): which upstream launch file, its argument
names for the installed version, our controller configuration and the controller each launch file spawns; and the
same for realsense-ros (rs_launch.py's argument names and the image topics of the installed version)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import yaml
from launch.actions import IncludeLaunchDescription, LogInfo
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


# realsense-ros: realsense.yaml holds the camera settings under rs_launch.py's 4.55+ argument names; an older 4.x
# rs_launch.py takes the same settings under these names (read from each tag's realsense2_camera/launch/rs_launch.py).
REALSENSE_PRE_4_55_NAMES = {
    "rgb_camera.color_profile": "rgb_camera.profile",
    "depth_module.depth_profile": "depth_module.profile",
}
REALSENSE_NEEDED = "realsense-ros 4.x (rs_launch.py with rgb_camera.profile or rgb_camera.color_profile: 4.0.x-4.56.x)"


@dataclass(frozen=True)
class RealsenseWiring:
    """How to start the installed realsense-ros: the launch arguments its rs_launch.py takes and the topics its node
    then publishes (the nodes subscribe to those)."""

    version: str  # realsense2_camera's package.xml
    argument_set: str  # "4.55+" or "4.0-4.54"
    arguments: dict[str, str]  # launch arguments for rs_launch.py
    color_topic: str
    color_info_topic: str
    depth_topic: str  # aligned depth (align_depth.enable)

    def describe(self) -> str:
        names = ", ".join(f"{k}:={v}" for k, v in self.arguments.items())
        return (
            f"realsense-ros {self.version}: {self.argument_set} launch arguments ({names}); "
            f"image {self.color_topic}, aligned depth {self.depth_topic}"
        )


def realsense_launch_arguments(launch_text: str) -> set[str]:
    """The launch arguments an rs_launch.py declares, from the file's text: its `configurable_parameters` entries
    (`{'name': 'rgb_camera.profile', ...}`) and any `DeclareLaunchArgument('name'` with a literal name."""
    entries = re.findall(r"""['"]name['"]\s*:\s*['"]([A-Za-z_][\w.]*)['"]""", launch_text)
    declared = re.findall(r"""DeclareLaunchArgument\(\s*['"]([A-Za-z_][\w.]*)['"]""", launch_text)
    return set(entries) | set(declared)


def _topic(*parts: str) -> str:
    return "/" + "/".join(p.strip("/") for p in parts if p.strip("/"))


def realsense_wiring(declared: set[str], settings: dict[str, str], version: str = "?") -> RealsenseWiring:
    """The launch arguments and topics for the rs_launch.py that declares `declared` (realsense_launch_arguments),
    given realsense.yaml's `settings` (4.55+ names). Read from each tag's rs_launch.py and rs_node_setup.cpp:

    | tags          | node namespace, name          | colour, depth profile arguments  | colour image topic   |
    | 2.x (ROS 1)   | no rs_launch.py               | -                                | not supported        |
    | 3.x           | camera_name, camera_name      | color_width, _height, _fps & co. | not supported        |
    | 4.0.x-4.54.1  | camera_name, camera_name      | rgb_camera.profile,              | /<name>/color/...    |
    |               |                               | depth_module.profile             |                      |
    | 4.55.1-RC     | camera_namespace, camera_name | rgb_camera.profile,              | /<namespace>/<name>/ |
    |               |                               | depth_module.profile             | color/image_raw      |
    | 4.55.1-4.56.x | camera_namespace, camera_name | rgb_camera.color_profile,        | /<namespace>/<name>/ |
    |               |                               | depth_module.depth_profile       | color/image_raw      |

    Before 4.55 the node's topics are relative to its namespace (camera_name); from 4.55 they are private (`~/`), so
    namespace and name both prefix them. Each profile key takes the name the installed file declares (4.55.1-RC mixes
    camera_namespace with the old profile names). A setting the installed rs_launch.py does not declare would be
    dropped silently by it: that is an error here, naming the version needed."""
    new = "camera_namespace" in declared
    arguments: dict[str, str] = {}
    for key, value in settings.items():
        name = key if key in declared else REALSENSE_PRE_4_55_NAMES.get(key, key)
        if name == "camera_namespace" and not new:
            continue  # before 4.55 the node's namespace is camera_name
        if name not in declared:
            raise RuntimeError(
                f"realsense-ros {version}: its rs_launch.py takes no {name!r} argument (realsense.yaml {key!r}), "
                f"which it would drop silently; ccol_bringup needs {REALSENSE_NEEDED}"
            )
        arguments[name] = str(value)
    for needed in ("rgb_camera.color_profile", "depth_module.depth_profile"):
        if needed not in settings:
            raise RuntimeError(f"realsense.yaml sets no {needed} (the D435i profile the policy expects)")
    name = arguments.get("camera_name", "camera")
    base = _topic(arguments.get("camera_namespace", "camera"), name) if new else _topic(name)
    return RealsenseWiring(
        version=version,
        argument_set="4.55+" if new else "4.0-4.54",
        arguments=arguments,
        color_topic=f"{base}/color/image_raw",
        color_info_topic=f"{base}/color/camera_info",
        depth_topic=f"{base}/aligned_depth_to_color/image_raw",
    )


def realsense_include(share: str) -> tuple[list, RealsenseWiring]:
    """rs_launch.py of the realsense2_camera installed at `share` with the argument names of its version, preceded
    by a log line saying which argument set was detected; and the topics it will publish."""
    launch_file = f"{share}/launch/rs_launch.py"
    try:
        version = package_version(share)
    except (OSError, RuntimeError):
        version = "?"
    if not os.path.isfile(launch_file):
        raise RuntimeError(
            f"realsense-ros {version} at {share} has no launch/rs_launch.py: ccol_bringup needs {REALSENSE_NEEDED} "
            "(apt install ros-$ROS_DISTRO-realsense2-camera), or use_realsense_ros:=false"
        )
    with open(launch_file) as f:
        declared = realsense_launch_arguments(f.read())
    if not declared & {"rgb_camera.profile", "rgb_camera.color_profile"}:
        raise RuntimeError(
            f"realsense-ros {version}: {launch_file} takes neither rgb_camera.color_profile (4.55+) nor "
            f"rgb_camera.profile (4.0-4.54): ccol_bringup needs {REALSENSE_NEEDED}, or use_realsense_ros:=false"
        )
    with open(config_file("realsense.yaml")) as f:
        settings = {k: str(v) for k, v in yaml.safe_load(f).items()}
    wiring = realsense_wiring(declared, settings, version)
    return [
        LogInfo(msg=f"ccol_bringup: {wiring.describe()}"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(launch_file), launch_arguments=list(wiring.arguments.items())
        ),
    ], wiring
