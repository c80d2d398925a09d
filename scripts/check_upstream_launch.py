"""Developer check: run ccol_bringup's launch files against the upstream packages' own sources.

Needs the sources of ros2/launch, ros2/launch_ros, osrf/osrf_pycommon, franka_ros2 (one tree per checked tag,
`franka_ros2@<tag>`), franka_description, multipanda_ros2, realsense-ros (one tree per checked tag,
`realsense-ros@<tag>`), ros2_control and ros2_controllers (`<repo>@humble`, `<repo>@jazzy`), exported by
scripts/check_upstream_launch.sh, and xacro; CI has none of them
(tests/test_launch.py skips with that reason). Every upstream package directory is laid out in a scratch ament
prefix (share/<pkg>, package.xml, and an empty placeholder for every executable a launch file names, so that
launch_ros resolves `package`/`executable` as on a robot); then each case's launch description is executed by
launch's own LaunchService with process start-up replaced by a record of the command: includes, launch
arguments, OpaqueFunctions (franka.launch.py's xacro run producing the robot description) and parameter files
all run for real. Every controller_manager `spawner` command a case starts is then parsed by the real spawner of
that row (ros2_control humble for franka_ros2 v2.x and multipanda_ros2, jazzy for v3.x, or the controller_manager
that a franka_ros2 tag vendors): its `main()` runs up to where it would create its ROS node, so its argument
parser and its parameter-file checks decide. The trajectory controller's plugin type, as the spawner's own
`get_parameter_from_param_files` reads it from `--param-file` (or from the controller manager's section of the
driver's controllers file), must be a class in that distro's ros2_controllers plugin XMLs. realsense-ros: the
Jazzy rows (franka_ros2 v3.x) include the first of --realsense-refs, the Humble rows (franka_ros2 v2.x,
multipanda_ros2) the last (by default 4.56.1 and 4.54.1: both rs_launch.py argument sets); the camera node must get
the 640x480x30 profiles under the names its rs_launch.py passes on, and policy_node / recorder_node must subscribe
to the image topics that tag's node publishes (its rs_node_setup.cpp: `~/` topics from 4.55, under namespace and
node name; before, under the namespace only). Prints each case's processes and exits non-zero when a case fails.

    python scripts/check_upstream_launch.py --src /tmp/ccol_upstream/src --franka-refs v2.2.0 v3.4.0 \
        --realsense-refs 4.56.1 4.54.1
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
import sys
import tempfile
import types
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("check_upstream_launch")

# package name -> directory inside --src (exported upstream trees) or this repository
PACKAGES = {
    "franka_ros2": {  # franka_ros2 stands for franka_ros2@<tag>
        "franka_bringup": "franka_ros2/franka_bringup",
        "franka_gripper": "franka_ros2/franka_gripper",
        "franka_hardware": "franka_ros2/franka_hardware",
        "franka_description": "franka_description",
        "realsense2_camera": "realsense-ros/realsense2_camera",  # realsense-ros stands for realsense-ros@<tag>
    },
    "multipanda_ros2": {
        "franka_bringup": "multipanda_ros2/franka_bringup",
        "franka_gripper": "multipanda_ros2/franka_gripper",
        "franka_hardware": "multipanda_ros2/franka_hardware",
        "franka_description": "multipanda_ros2/franka_description",
        "realsense2_camera": "realsense-ros/realsense2_camera",  # realsense-ros stands for realsense-ros@<tag>
    },
}
OURS = {
    "ccol_bringup": "ccol_bringup",
    "ccol_sim": "ccol_sim",
    "ccol_policy": "ccol_policy",
    "ccol_teleop": "ccol_teleop",
}
EXECUTABLES = {
    "controller_manager": ["spawner", "ros2_control_node"],
    "robot_state_publisher": ["robot_state_publisher"],
    "joint_state_publisher": ["joint_state_publisher"],
    "franka_gripper": ["franka_gripper_node", "fake_gripper_state_publisher.py"],
    "franka_control2": ["franka_control2_node"],
    "realsense2_camera": ["realsense2_camera_node"],
    "rviz2": ["rviz2"],
    "ccol_policy": ["policy_node"],
    "ccol_teleop": ["recorder_node"],
    "ccol_sim": ["sim_node"],
}
CASES = {
    "policy_fr3": ("franka_ros2", "policy.launch.py", {"robot_ip": "172.16.0.2", "instruction": "lift the pen"}),
    "record_fr3": ("franka_ros2", "record.launch.py", {"robot_ip": "172.16.0.2", "instruction": "lift the pen"}),
    "policy_panda": (
        "multipanda_ros2",
        "policy.launch.py",
        {"robot_ip": "172.16.0.2", "robot_type": "panda", "instruction": "lift the pen"},
    ),
    "record_panda": (
        "multipanda_ros2",
        "record.launch.py",
        {"robot_ip": "172.16.0.2", "robot_type": "panda", "instruction": "lift the pen"},
    ),
    "policy_sim": ("franka_ros2", "policy.launch.py", {"use_sim": "true", "instruction": "lift the pen"}),
    "record_sim": ("franka_ros2", "record.launch.py", {"use_sim": "true", "instruction": "lift the pen"}),
}


def make_prefix(root: Path, src: Path, driver: str, ref: str | None, realsense_ref: str) -> Path:
    """A scratch ament prefix holding the upstream packages of `driver` (franka_ros2 at tag `ref`), realsense-ros at
    tag `realsense_ref` and ours."""
    prefix = root / f"{driver if ref is None else f'{driver}@{ref}'}+realsense-ros@{realsense_ref}"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    tree = {"realsense-ros": f"realsense-ros@{realsense_ref}"}
    if ref:
        tree["franka_ros2"] = f"franka_ros2@{ref}"
    packages = {
        name: src / (tree.get(path.split("/")[0], path.split("/")[0]) + path[len(path.split("/")[0]) :])
        for name, path in PACKAGES[driver].items()
    }
    packages.update({name: REPO / path for name, path in OURS.items()})
    for name in EXECUTABLES:
        packages.setdefault(name, None)
    for name, path in packages.items():
        (index / name).write_text("")
        share = prefix / "share" / name
        if path is not None:
            if not path.is_dir():
                raise SystemExit(f"{path} missing: export the upstream sources first (check_upstream_launch.sh)")
            share.symlink_to(path)
        else:
            share.mkdir()
            (share / "package.xml").write_text(f"<package><name>{name}</name><version>0.0.0</version></package>")
        for exe in EXECUTABLES.get(name, []):
            lib = prefix / "lib" / name
            lib.mkdir(parents=True, exist_ok=True)
            (lib / exe).write_text("#!/bin/sh\nexit 0\n")  # never started: launch only resolves the path
            (lib / exe).chmod(0o755)
    return prefix


def run_case(name: str, prefix: Path, launch_file: str, arguments: dict[str, str]) -> list[list[str]]:
    """Execute the launch description with process start-up recorded instead of performed."""
    import launch
    from launch.actions import ExecuteLocal, IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    started: list[list[str]] = []

    async def record_process(self, context):  # noqa: ANN001 - replaces ExecuteLocal.__execute_process
        started.append([str(c) for c in self.process_details["cmd"]])
        self._ExecuteLocal__completed_future.set_result(None)  # "exited": the service goes idle and ends

    ExecuteLocal._ExecuteLocal__execute_process = record_process
    os.environ["AMENT_PREFIX_PATH"] = str(prefix)
    ld = launch.LaunchDescription(
        [
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(REPO / "ccol_bringup" / "launch" / launch_file)),
                launch_arguments=arguments.items(),
            )
        ]
    )
    service = launch.LaunchService(noninteractive=True)
    service.include_launch_description(ld)
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(service.run_async(shutdown_when_idle=True))
        code = loop.run_until_complete(asyncio.wait_for(task, 60))
    finally:
        loop.close()
    if code != 0:
        raise RuntimeError(f"{name}: LaunchService returned {code}")
    return started


def check_robot_description(started: list[list[str]], robot_type: str, sim: bool) -> None:
    """robot_state_publisher got a processed URDF with the robot's joints (xacro ran with the robot type)."""
    rsp = [c for c in started if c[0].endswith("robot_state_publisher")]
    if sim:
        return
    if not rsp:
        raise RuntimeError("no robot_state_publisher started: the driver was not included")
    cmd = rsp[0]
    params = [cmd[i + 1] for i, c in enumerate(cmd) if c == "--params-file"]
    text = "".join(Path(p).read_text() for p in params if Path(p).is_file())
    # multipanda passes the description as a Command substitution: launch ran xacro, the URDF is in the file
    if f"{robot_type}_joint1" not in text or "<robot" not in text:
        raise RuntimeError(f"robot_description lacks {robot_type}_joint1: xacro did not get the robot type")
    log.info(f"  robot_description: {len(text)} characters of URDF with {robot_type}_joint1..7")


def node_parameters(cmd: list[str]) -> dict:
    """The parameters a node's command passes in --params-file files (every node section, nested names joined with
    dots) and -p rules, later ones winning as in rcl."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    params: dict = {}
    for i, c in enumerate(cmd[:-1]):
        if c == "--params-file":
            for section in (yaml.safe_load(Path(cmd[i + 1]).read_text()) or {}).values():
                params.update(flat(section.get("ros__parameters", {})))
        elif c == "-p":
            name, _, value = cmd[i + 1].partition(":=")
            params[name] = yaml.safe_load(value)
    return params


def remap(cmd: list[str], name: str) -> str | None:
    """The value of a `-r __ns:=` / `-r __node:=` rule of a node's command."""
    rules = [cmd[i + 1] for i, c in enumerate(cmd[:-1]) if c in ("-r", "--remap")]
    return next((r.split(":=", 1)[1] for r in rules if r.startswith(f"{name}:=")), None)


def check_realsense(started: list[list[str]], src: Path, realsense_ref: str) -> None:
    """realsense2_camera_node got the 640x480x30 colour and depth profiles and aligned depth under the names its
    rs_launch.py passes on (a name it does not declare never reaches the node: the profile stays 0,0,0), and the
    policy or recorder node subscribes to the topics the node of that tag publishes (its rs_node_setup.cpp)."""
    camera = [c for c in started if c[0].endswith("/realsense2_camera_node")]
    if len(camera) != 1:
        raise RuntimeError(f"{len(camera)} realsense2_camera_node processes, not 1")
    params = node_parameters(camera[0])
    profiles = {k: v for k, v in params.items() if k.startswith(("rgb_camera.", "depth_module.")) and "profile" in k}
    for module in ("rgb_camera", "depth_module"):
        if not any(k.startswith(module) and str(v) == "640x480x30" for k, v in profiles.items()):
            raise RuntimeError(f"realsense2_camera_node got no 640x480x30 {module} profile: {profiles}")
    if str(params.get("align_depth.enable")).lower() != "true":
        raise RuntimeError(f"realsense2_camera_node: align_depth.enable is {params.get('align_depth.enable')!r}")
    setup = src / f"realsense-ros@{realsense_ref}/realsense2_camera/src/rs_node_setup.cpp"
    private = '"~/"' in setup.read_text()  # 4.55+: `~/color/image_raw`; before: `color/image_raw`
    ns, node = remap(camera[0], "__ns") or "/", remap(camera[0], "__node")
    base = "/".join(p.strip("/") for p in (ns, node if private else "") if p.strip("/"))
    color, depth = f"/{base}/color/image_raw", f"/{base}/aligned_depth_to_color/image_raw"
    ours = [c for c in started if c[0].endswith(("/policy_node", "/recorder_node"))]
    if len(ours) != 1:
        raise RuntimeError(f"{len(ours)} policy_node/recorder_node processes, not 1")
    subscribed = node_parameters(ours[0])
    image_key = "image_topic" if ours[0][0].endswith("/policy_node") else "color_topic"
    if (subscribed.get(image_key), subscribed.get("depth_topic")) != (color, depth):
        raise RuntimeError(
            f"realsense-ros@{realsense_ref} publishes {color} and {depth}; {Path(ours[0][0]).name} subscribes to "
            f"{subscribed.get(image_key)} and {subscribed.get('depth_topic')}"
        )
    names = " ".join(f"{k}={v}" for k, v in sorted(profiles.items()) if str(v) != "0,0,0")
    log.info(
        f"  realsense-ros@{realsense_ref}: node {node} in namespace {ns} with {names}; publishes {color} "
        f"({'~/' if private else 'namespace-relative'} topics) = {Path(ours[0][0]).name} {image_key}, depth {depth}"
    )


def ros_distro(driver: str, ref: str | None) -> str:
    """The ros2_control / ros2_controllers branch of a row: franka_ros2 v3.x is Jazzy, v2.x and multipanda Humble."""
    return "jazzy" if driver == "franka_ros2" and ref and ref.startswith("v3") else "humble"


class SpawnerParsed(BaseException):  # BaseException: the spawner catches Exception
    """Raised where the real spawner would create its ROS node: its command line has been parsed and checked."""

    def __init__(self, local_vars: dict) -> None:
        super().__init__("parsed")
        self.local_vars = local_vars


def forget_controller_manager() -> None:
    """Drop the controller_manager package and its placeholders from sys.modules (before the next row's)."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("controller_manager", "controller_manager_msgs")]:
        del sys.modules[name]
    if getattr(sys.modules.get("ros2param"), "__file__", None) is None:
        sys.modules.pop("ros2param", None)
        sys.modules.pop("ros2param.api", None)


def load_controller_manager(source: Path) -> types.ModuleType:
    """The real controller_manager Python package at `source` (…/controller_manager/controller_manager), importable
    without ROS message packages: controller_manager_msgs.srv and ros2param.api are placeholders (they are used only
    after the point where the check stops the spawner)."""
    forget_controller_manager()

    class _Service:
        class Request:
            STRICT, BEST_EFFORT, FORCE_AUTO = 2, 1, 3

        class Response: ...

    msgs = types.ModuleType("controller_manager_msgs")
    srv = types.ModuleType("controller_manager_msgs.srv")

    def service_type(name: str) -> type:  # every service type the package imports
        if name.startswith("__"):
            raise AttributeError(name)
        return _Service

    srv.__getattr__ = service_type
    msgs.srv = srv
    api = types.ModuleType("ros2param.api")
    api.call_set_parameters = api.get_parameter_value = lambda *a, **k: None
    sys.modules.update({"controller_manager_msgs": msgs, "controller_manager_msgs.srv": srv, "ros2param.api": api})
    sys.modules.setdefault("ros2param", types.ModuleType("ros2param")).api = api
    sys.path.insert(0, str(source.parent))
    try:
        package = importlib.import_module("controller_manager")
        importlib.import_module("controller_manager.spawner")
    finally:
        sys.path.remove(str(source.parent))
    if Path(package.__file__).parent != source:
        raise RuntimeError(f"imported controller_manager from {package.__file__}, not {source}")
    return package


def run_spawner(package: types.ModuleType, cmd: list[str], ros_home: Path) -> dict:
    """Run the real spawner's main() on `cmd` up to its node: returns its local variables (parsed arguments)."""
    import rclpy

    spawner = sys.modules["controller_manager.spawner"]

    def stop_at_node(*args, **kwargs):
        raise SpawnerParsed(dict(sys._getframe(1).f_locals))

    saved = (sys.argv, rclpy.init, rclpy.shutdown, spawner.Node, os.environ.get("ROS_HOME"))
    sys.argv = ["spawner", *cmd[1:]]
    rclpy.init = rclpy.shutdown = lambda *a, **k: None
    spawner.Node = stop_at_node
    os.environ["ROS_HOME"] = str(ros_home)  # jazzy's spawner takes a file lock there first
    try:
        spawner.main()
    except SpawnerParsed as parsed:
        return parsed.local_vars
    except SystemExit as exc:
        raise RuntimeError(f"the spawner rejected its arguments {cmd[1:]} (exit {exc.code})") from None
    finally:
        sys.argv, rclpy.init, rclpy.shutdown, spawner.Node = saved[:4]
        if saved[4] is None:
            os.environ.pop("ROS_HOME", None)
        else:
            os.environ["ROS_HOME"] = saved[4]
    raise RuntimeError(f"the spawner returned before creating its node: {cmd[1:]}")


def spawned_controllers(local_vars: dict) -> list[tuple[str, list[str]]]:
    """(controller, parameter files) from the spawner's locals: Jazzy's `controllers` dicts, Humble's names."""
    if "controllers" in local_vars:
        return [(c["name"], list(c.get("param_files") or [])) for c in local_vars["controllers"]]
    return [(name, list(local_vars.get("param_files") or [])) for name in local_vars["controller_names"]]


def plugin_classes(ros2_controllers: Path) -> set[str]:
    """Every controller class name the ros2_controllers tree exports (its pluginlib XML files)."""
    names: set[str] = set()
    for xml in ros2_controllers.glob("*/*.xml"):
        names.update(re.findall(r'<class\s+name="([^"]+)"', xml.read_text()))
    return names


def controller_type(package: types.ModuleType, name: str, files: list[str], driver_files: list[str]) -> str | None:
    """The plugin type the controller manager will load `name` as: from the spawner's --param-file (read by the
    spawner's own get_parameter_from_param_files), else from the controller manager's section of the driver's
    controllers file."""
    if files:

        class _Node:
            def get_logger(self):
                return logging.getLogger("spawner")

        found = package.get_parameter_from_param_files(_Node(), name, "/", files, "type")
        if found:
            return found
    for path in driver_files:
        doc = yaml.safe_load(Path(path).read_text())
        for root in (doc, doc.get("/**", {})):
            cm = root.get("controller_manager", {}).get("ros__parameters", {})
            if isinstance(cm.get(name), dict) and "type" in cm[name]:
                return cm[name]["type"]
    return None


def check_spawners(started: list[list[str]], src: Path, driver: str, ref: str | None, trajectory: str) -> None:
    """Every spawner command parsed by the row's real spawner; the trajectory controller's type exists."""
    distro = ros_distro(driver, ref)
    vendored = src / f"franka_ros2@{ref}/controller_manager/controller_manager"  # v3.0.0 ships its own
    source = (
        vendored if ref and vendored.is_dir() else src / f"ros2_control@{distro}/controller_manager/controller_manager"
    )
    package = load_controller_manager(source)
    try:
        check_spawner_commands(package, source, started, src, distro, trajectory)
    finally:
        forget_controller_manager()


def check_spawner_commands(
    package: types.ModuleType, source: Path, started: list[list[str]], src: Path, distro: str, trajectory: str
) -> None:
    classes = plugin_classes(src / f"ros2_controllers@{distro}")
    driver_files = [  # the controller manager's parameter files (franka_ros2: our controllers_yaml; multipanda's)
        cmd[i + 1]
        for cmd in started
        if cmd[0].endswith(("/ros2_control_node", "/franka_control2_node"))
        for i, c in enumerate(cmd)
        if c == "--params-file"
    ]
    with tempfile.TemporaryDirectory() as ros_home:
        for cmd in started:
            if not cmd[0].endswith("/spawner"):
                continue
            for name, files in spawned_controllers(run_spawner(package, cmd, Path(ros_home))):
                line = (
                    f"  spawner ({source.relative_to(src)}) parsed: {name} param files {[Path(f).name for f in files]}"
                )
                if name == trajectory:
                    kind = controller_type(package, name, files, driver_files)
                    if kind not in classes:
                        raise RuntimeError(
                            f"{name} would load as {kind!r}, not a controller of ros2_controllers@{distro}"
                        )
                    line += f"; type {kind} (in ros2_controllers@{distro})"
                log.info(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help="directory with the exported upstream trees")
    parser.add_argument("--case", default="all", choices=["all", *CASES])
    parser.add_argument(
        "--franka-refs", nargs="+", help="franka_ros2 tags exported as franka_ros2@<tag> (default: every one in --src)"
    )
    parser.add_argument(
        "--realsense-refs",
        nargs="+",
        help="realsense-ros tags exported as realsense-ros@<tag>, newest first: the first for the Jazzy rows, the last "
        "for the Humble rows (default: every one in --src)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path[:0] = [str(REPO / "ccol_bringup"), str(REPO / "ccol_policy")]
    from ccol_policy.robots import profile_for

    failures = runs = 0
    src = Path(args.src)
    if not args.franka_refs:
        args.franka_refs = sorted((p.name.split("@", 1)[1] for p in src.glob("franka_ros2@*")), reverse=True)
    if not args.realsense_refs:
        tags = [p.name.split("@", 1)[1] for p in src.glob("realsense-ros@*")]
        args.realsense_refs = sorted(tags, key=lambda t: [int(x) for x in re.findall(r"\d+", t)], reverse=True)
    if not args.realsense_refs:
        raise SystemExit(f"no realsense-ros@<tag> in {src}: export the sources first (check_upstream_launch.sh)")
    with tempfile.TemporaryDirectory(prefix="ccol_upstream_") as tmp:
        rows = [("franka_ros2", ref) for ref in args.franka_refs] + [("multipanda_ros2", None)]
        for driver, ref in rows:
            realsense_ref = args.realsense_refs[0 if ros_distro(driver, ref) == "jazzy" else -1]
            prefix = make_prefix(Path(tmp), src, driver, ref, realsense_ref)
            for name, (case_driver, launch_file, arguments) in CASES.items():
                sim = "use_sim" in arguments
                if args.case not in ("all", name) or case_driver != driver or (sim and ref != args.franka_refs[0]):
                    continue
                runs += 1
                row = (f"{driver}@{ref}" if ref else driver) + ("" if sim else f", realsense-ros@{realsense_ref}")
                log.info(f"=== {name}: {launch_file} {' '.join(f'{k}:={v}' for k, v in arguments.items())} [{row}]")
                try:
                    started = run_case(name, prefix, launch_file, arguments)
                    for cmd in started:
                        exe = Path(cmd[0])
                        log.info(
                            f"  {exe.parent.name}/{exe.name} " + " ".join(c for c in cmd[1:] if len(c) < 200)[:300]
                        )
                    robot_type = arguments.get("robot_type", "fr3")
                    check_robot_description(started, robot_type, sim)
                    if not sim:
                        check_realsense(started, src, realsense_ref)
                        profile = profile_for(robot_type)
                        check_spawners(started, src, driver, ref, profile.trajectory_controller)
                except Exception as exc:  # report every case
                    failures += 1
                    log.info(f"  FAILED: {type(exc).__name__}: {exc}")
    log.info(f"{runs - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
