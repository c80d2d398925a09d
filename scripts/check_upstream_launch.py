"""Developer check: run ccol_bringup's launch files against the upstream packages' own sources.

Needs the sources of ros2/launch, ros2/launch_ros, osrf/osrf_pycommon, franka_ros2, franka_description,
multipanda_ros2 and realsense-ros (exported by scripts/check_upstream_launch.sh) and xacro; CI has none of them
(tests/test_launch.py skips with that reason). Every upstream package directory is laid out in a scratch ament
prefix (share/<pkg>, package.xml, and an empty placeholder for every executable a launch file names, so that
launch_ros resolves `package`/`executable` as on a robot); then each case's launch description is executed by
launch's own LaunchService with process start-up replaced by a record of the command: includes, launch
arguments, OpaqueFunctions (franka.launch.py's xacro run producing the robot description) and parameter files
all run for real. Prints each case's processes and exits non-zero when a case fails.

    python scripts/check_upstream_launch.py --src /tmp/ccol_upstream/src --case all
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("check_upstream_launch")

# package name -> directory inside --src (exported upstream trees) or this repository
PACKAGES = {
    "franka_ros2": {
        "franka_bringup": "franka_ros2/franka_bringup",
        "franka_gripper": "franka_ros2/franka_gripper",
        "franka_hardware": "franka_ros2/franka_hardware",
        "franka_description": "franka_description",
        "realsense2_camera": "realsense-ros/realsense2_camera",
    },
    "multipanda_ros2": {
        "franka_bringup": "multipanda_ros2/franka_bringup",
        "franka_gripper": "multipanda_ros2/franka_gripper",
        "franka_hardware": "multipanda_ros2/franka_hardware",
        "franka_description": "multipanda_ros2/franka_description",
        "realsense2_camera": "realsense-ros/realsense2_camera",
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


def make_prefix(root: Path, src: Path, driver: str) -> Path:
    """A scratch ament prefix holding the upstream packages of `driver` and ours."""
    prefix = root / driver
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    packages = {name: src / path for name, path in PACKAGES[driver].items()}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help="directory with the exported upstream trees")
    parser.add_argument("--case", default="all", choices=["all", *CASES])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path[:0] = [str(REPO / "ccol_bringup"), str(REPO / "ccol_policy")]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="ccol_upstream_") as tmp:
        prefixes = {d: make_prefix(Path(tmp), Path(args.src), d) for d in PACKAGES}
        for name, (driver, launch_file, arguments) in CASES.items():
            if args.case not in ("all", name):
                continue
            log.info(f"=== {name}: {launch_file} {' '.join(f'{k}:={v}' for k, v in arguments.items())} [{driver}]")
            try:
                started = run_case(name, prefixes[driver], launch_file, arguments)
                for cmd in started:
                    exe = Path(cmd[0])
                    log.info(f"  {exe.parent.name}/{exe.name} " + " ".join(c for c in cmd[1:] if len(c) < 200)[:300])
                check_robot_description(started, arguments.get("robot_type", "fr3"), "use_sim" in arguments)
            except Exception as exc:  # report every case
                failures += 1
                log.info(f"  FAILED: {type(exc).__name__}: {exc}")
    log.info(f"{len(CASES) - failures if args.case == 'all' else 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
