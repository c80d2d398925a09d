"""Launch files and their YAML: run them where `launch` imports, otherwise check everything they name exists."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / "ccol_bringup" / "launch").glob("*.launch.py")) + sorted(
    (ROOT / "ccol_sim" / "launch").glob("*.launch.py")
)


def _console_scripts(package: str) -> set[str]:
    text = (ROOT / package / "setup.py").read_text()
    return set(re.findall(r'"([a-z_]+) = [a-z_.]+:main"', text))


def _calls(path: Path, name: str) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def test_expected_launch_files_exist() -> None:
    names = {p.name for p in LAUNCH_FILES}
    assert {"policy.launch.py", "record.launch.py"} <= names


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_named_executables_and_configs_exist(path: Path) -> None:
    nodes = _calls(path, "Node")
    assert nodes, f"{path.name} starts no node"
    for call in nodes:
        kw = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
        assert kw["executable"] in _console_scripts(kw["package"]), (kw, path.name)
    for call in _calls(path, "config_file"):
        assert (ROOT / "ccol_bringup" / "config" / call.args[0].value).is_file()


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_description_builds(path: Path) -> None:
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        pytest.skip(
            "the ROS 2 `launch`/`launch_ros` packages are not installable from PyPI here; "
            "executables and configs are checked by test_named_executables_and_configs_exist"
        )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.generate_launch_description().entities


NODE_TABLES = {
    "policy_node": "ccol_policy.policy_node",
    "recorder_node": "ccol_teleop.recorder_node",
    "sim_node": "ccol_sim.sim_node",
}


def _parameters(node: str) -> dict:
    pytest.importorskip("rclpy", reason="rclpy wheels not installed")
    return importlib.import_module(NODE_TABLES[node]).PARAMETERS


@pytest.mark.parametrize("node", sorted(NODE_TABLES))
def test_every_node_parameter_is_declared_once_with_a_description(node: str) -> None:
    table = _parameters(node)
    assert all(p.description.strip() for p in table.values()), [k for k, p in table.items() if not p.description]
    source = Path(sys.modules[NODE_TABLES[node]].__file__).read_text()
    assert "declare_parameter(" not in source and "declare_parameters(self, PARAMETERS)" in source


def test_yaml_configs_only_override_node_defaults() -> None:
    """A node's YAML holds deployment overrides: each key a declared parameter of the same type, none repeating
    the code default (the one source)."""
    checked = 0
    for path in sorted((ROOT / "ccol_bringup" / "config").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for node in set(doc or {}) & set(NODE_TABLES):
            table = _parameters(node)
            for key, value in doc[node]["ros__parameters"].items():
                assert key in table, f"{path.name}: {node} declares no parameter {key!r}"
                assert type(value) is type(table[key].default), f"{path.name}: {key}"
                assert value != table[key].default, f"{path.name}: {key}: {value!r} repeats the default in the code"
                checked += 1
    assert checked >= 2  # policy.yaml: the D435i's 640x480


@pytest.mark.parametrize("name,node", [("policy.launch.py", "policy_node"), ("record.launch.py", "recorder_node")])
def test_launch_overrides_name_declared_parameters(name: str, node: str) -> None:
    tree = ast.parse((ROOT / "ccol_bringup" / "launch" / name).read_text())
    keys = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "overrides":
            keys |= {k.value for k in n.value.keys}
        elif isinstance(n, ast.Subscript) and getattr(n.value, "id", None) == "overrides":
            keys.add(n.slice.value)
    assert len(keys) >= 10 and keys <= set(_parameters(node))


@pytest.mark.parametrize(
    "name,args",
    [
        (
            "policy.launch.py",
            {"instruction", "checkpoint", "device", "rate_hz", "robot_type", "robot_ip", "execution_mode", "use_sim"},
        ),
        (
            "record.launch.py",
            {"instruction", "output_dir", "robot_type", "robot_ip", "use_realsense_ros", "record_depth", "use_sim"},
        ),
    ],
)
def test_launch_arguments(name: str, args: set[str]) -> None:
    tree = ast.parse((ROOT / "ccol_bringup" / "launch" / name).read_text())
    declared = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "ARGS")
    assert args <= {k.value for k in declared.value.keys}


def test_fr3_controllers_define_the_trajectory_controller_the_node_streams_to() -> None:
    from ccol_policy.policy_node import PARAMETERS
    from ccol_policy.robots import profile_for

    docs = yaml.safe_load((ROOT / "ccol_bringup" / "config" / "controllers_fr3.yaml").read_text())
    manager = docs["/**"]["controller_manager"]["ros__parameters"]
    profile = profile_for("fr3")
    assert manager[profile.trajectory_controller]["type"] == "joint_trajectory_controller/JointTrajectoryController"
    assert manager[profile.gravity_controller]["type"].startswith("franka_example_controllers/")
    assert {"joint_state_broadcaster", "franka_robot_state_broadcaster"} <= set(manager)
    jtc = docs["/**"][profile.trajectory_controller]["ros__parameters"]
    assert jtc["joints"] == [f"fr3_joint{i}" for i in range(1, 8)]
    assert jtc["command_interfaces"] == ["effort"] and set(jtc["gains"]) == set(jtc["joints"])
    assert jtc["allow_nonzero_velocity_at_trajectory_end"] is False  # our chunks end at rest
    assert PARAMETERS["trajectory_topic"].default == profile.trajectory_topic


def test_driver_rows_and_franka_launch_argument_names() -> None:
    """The robot argument comes from the installed franka.launch.py, not package.xml: v3.0.0 says 2.0.2 and takes
    arm_id and controllers_yaml, v2.0.2 says 2.0.2 and takes no controllers_yaml, v2.2.0 takes robot_type
    (excerpts of each tag's franka_bringup/launch/franka.launch.py)."""
    from ccol_policy.robots import franka_launch_arguments, franka_launch_robot_argument, profile_for

    v2_2 = """
    robot_type = LaunchConfiguration('robot_type').perform(context)
    controllers_yaml = LaunchConfiguration('controllers_yaml').perform(context)
        DeclareLaunchArgument(
            'robot_type', default_value='', description='ID of the type of arm used'
        ),
        DeclareLaunchArgument('controllers_yaml', default_value=PathJoinSubstitution([...]))"""
    v3_0 = """
            'arm_id': LaunchConfiguration('arm_id').perform(context),
    controllers_yaml = LaunchConfiguration('controllers_yaml').perform(context)
        DeclareLaunchArgument('arm_id',"""
    v2_0_2 = """
            'arm_id': LaunchConfiguration('arm_id').perform(context),
    controllers_yaml = PathJoinSubstitution([
        DeclareLaunchArgument('arm_id',"""
    assert franka_launch_arguments(v2_2) == {"robot_type", "controllers_yaml"}
    assert franka_launch_robot_argument(franka_launch_arguments(v2_2), "2.2.0") == "robot_type"
    assert franka_launch_robot_argument(franka_launch_arguments(v3_0), "2.0.2") == "arm_id"
    with pytest.raises(ValueError, match="controllers_yaml"):
        franka_launch_robot_argument(franka_launch_arguments(v2_0_2), "2.0.2")
    assert profile_for("left_fr3").gripper_namespace == "/franka_gripper"
    assert (
        profile_for("panda").driver == "multipanda_ros2" and profile_for("panda").gripper_namespace == "/panda_gripper"
    )
    with pytest.raises(ValueError, match="robot_type"):
        profile_for("ur5")


def test_panda_trajectory_controller_config_replaces_multipandas_type() -> None:
    """The Panda's spawner gets our controllers_panda.yaml (--param-file; the wiring is executed by
    scripts/check_upstream_launch.py): its JTC section carries the plugin type, which the spawner sets on the
    controller manager, and multipanda's effort interfaces and gains."""
    from ccol_policy.robots import profile_for

    profile = profile_for("panda")
    robot_py = (ROOT / "ccol_bringup" / "ccol_bringup" / "robot.py").read_text()
    assert '"controllers_panda.yaml"' in robot_py and '"--param-file", controllers_file(profile)' in robot_py
    path = ROOT / "ccol_bringup" / "config" / "controllers_panda.yaml"
    jtc = yaml.safe_load(path.read_text())[profile.trajectory_controller]["ros__parameters"]
    assert jtc["type"] == "joint_trajectory_controller/JointTrajectoryController"
    assert jtc["joints"] == [f"panda_joint{i}" for i in range(1, 8)]
    assert jtc["command_interfaces"] == ["effort"] and jtc["state_interfaces"] == ["position", "velocity"]
    assert set(jtc["gains"]) == set(jtc["joints"]) and jtc["allow_nonzero_velocity_at_trajectory_end"] is False


def test_launch_files_against_upstream_sources() -> None:
    """scripts/check_upstream_launch.sh executes both launch files against franka_ros2, multipanda_ros2,
    franka_description and realsense-ros with ros2/launch + launch_ros from source; it needs those sources."""
    src = os.environ.get("CCOL_UPSTREAM_SRC")
    if not src:
        pytest.skip(
            "needs the upstream sources (ros2/launch, launch_ros, osrf_pycommon, franka_ros2 tags, "
            "franka_description, multipanda_ros2, realsense-ros, ros2_control, ros2_controllers): run "
            "scripts/check_upstream_launch.sh, or set CCOL_UPSTREAM_SRC to its exported src directory with "
            "launch/launch_ros/osrf_pycommon/xacro on PYTHONPATH"
        )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_upstream_launch.py"), "--src", src],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_fr3_controller_config_has_franka_ros2_real_time_settings() -> None:
    """franka_ros2 v3.4.0's controllers.yaml: thread_priority 98, overruns.manage false (ros2_control_node reads
    both on Jazzy); JTC continues streamed chunks from the desired state."""
    cfg = yaml.safe_load((ROOT / "ccol_bringup" / "config" / "controllers_fr3.yaml").read_text())["/**"]
    cm = cfg["controller_manager"]["ros__parameters"]
    assert cm["update_rate"] == 1000 and cm["thread_priority"] == 98
    assert cm["overruns"] == {"manage": False, "print_warnings": False}
    assert cfg["joint_trajectory_controller"]["ros__parameters"]["interpolate_from_desired_state"] is True


# Excerpts of realsense-ros' realsense2_camera/launch/rs_launch.py (the arguments ccol_bringup passes, and the node's
# namespace; padding and descriptions shortened): 4.54.1 (4.0.x-4.54.1 alike), 4.55.1 (4.56.1 alike); 3.2.3 sizes
# streams with color_width & co.
RS_LAUNCH_4_54_1 = """
configurable_parameters = [{'name': 'camera_name', 'default': 'camera', 'description': ''},
                           {'name': 'depth_module.profile', 'default': '0,0,0', 'description': ''},
                           {'name': 'rgb_camera.profile', 'default': '0,0,0', 'description': ''},
                           {'name': 'enable_sync', 'default': 'false', 'description': ''},
                           {'name': 'align_depth.enable', 'default': 'false', 'description': ''},
                          ]
    _config_file = LaunchConfiguration("config_file").perform(context)
                namespace=LaunchConfiguration("camera_name"),
                name=LaunchConfiguration("camera_name"),
"""
RS_LAUNCH_4_55_1 = """
configurable_parameters = [{'name': 'camera_name', 'default': 'camera', 'description': ''},
                           {'name': 'camera_namespace', 'default': 'camera', 'description': ''},
                           {'name': 'rgb_camera.color_profile', 'default': '0,0,0', 'description': ''},
                           {'name': 'depth_module.depth_profile', 'default': '0,0,0', 'description': ''},
                           {'name': 'enable_sync', 'default': 'false', 'description': ''},
                           {'name': 'align_depth.enable', 'default': 'false', 'description': ''},
                          ]
            namespace=LaunchConfiguration('camera_namespace' + param_name_suffix),
            name=LaunchConfiguration('camera_name' + param_name_suffix),
"""
RS_LAUNCH_3_2_3 = """
configurable_parameters = [{'name': 'camera_name', 'default': 'camera', 'description': ''},
                           {'name': 'color_width', 'default': '-1', 'description': ''},
                           {'name': 'enable_sync', 'default': 'false', 'description': ''},
                           {'name': 'align_depth', 'default': 'false', 'description': ''},
                          ]
"""


class _FakeAction:
    """Stands in for a launch / launch_ros action: keeps what it was built with."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _FakeLaunchConfiguration(_FakeAction):
    def perform(self, context: dict) -> str:
        return context[self.args[0]]


@pytest.fixture
def fake_launch(monkeypatch, tmp_path):
    """`launch`/`launch_ros` replaced by recording fakes, and a realsense2_camera share directory in tmp_path that the
    test fills with an rs_launch.py (package_share finds it; every other package is not installed)."""
    import types

    import ccol_bringup

    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "IncludeLaunchDescription", "LogInfo", "OpaqueFunction"],
        "launch.launch_description_sources": ["PythonLaunchDescriptionSource"],
        "launch.substitutions": [],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
    }
    for module_name, classes in names.items():
        module = types.ModuleType(module_name)
        for cls in classes:
            setattr(module, cls, type(cls, (_FakeAction,), {}))
        monkeypatch.setitem(sys.modules, module_name, module)
    sys.modules["launch.substitutions"].LaunchConfiguration = _FakeLaunchConfiguration
    share = tmp_path / "realsense2_camera"
    (share / "launch").mkdir(parents=True)
    monkeypatch.setattr(ccol_bringup, "package_share", lambda name: str(share) if name == share.name else None)
    monkeypatch.delitem(sys.modules, "ccol_bringup.robot", raising=False)  # re-imported with the fakes
    monkeypatch.delattr(ccol_bringup, "robot", raising=False)

    def install(version: str, rs_launch: str | None) -> None:
        (share / "package.xml").write_text(f"<package><name>realsense2_camera</name><version>{version}</version>")
        if rs_launch is not None:
            (share / "launch" / "rs_launch.py").write_text(rs_launch)

    yield install
    sys.modules.pop("ccol_bringup.robot", None)  # built on the fakes; monkeypatch then restores an earlier import
    if hasattr(ccol_bringup, "robot"):
        del ccol_bringup.robot


def _run_setup(name: str, **arguments: str) -> list:
    """The actions of a launch file's OpaqueFunction for `arguments` (the others at their defaults)."""
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), ROOT / "ccol_bringup" / "launch" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = {key: default for key, (default, _doc) in module.ARGS.items()} | arguments
    return module._setup(context)


def _of(actions: list, kind: str) -> list:
    return [a for a in actions if type(a).__name__ == kind]


def _node_overrides(actions: list) -> dict:
    (node,) = _of(actions, "Node")
    return node.kwargs["parameters"][-1]


@pytest.mark.parametrize(
    "version,rs_launch,rs_arguments,base",
    [
        (
            "4.54.1",
            RS_LAUNCH_4_54_1,
            {
                "camera_name": "camera",
                "rgb_camera.profile": "640x480x30",
                "depth_module.profile": "640x480x30",
                "align_depth.enable": "true",
                "enable_sync": "true",
            },
            "/camera",
        ),
        (
            "4.55.1",
            RS_LAUNCH_4_55_1,
            {
                "camera_namespace": "camera",
                "camera_name": "camera",
                "rgb_camera.color_profile": "640x480x30",
                "depth_module.depth_profile": "640x480x30",
                "align_depth.enable": "true",
                "enable_sync": "true",
            },
            "/camera/camera",
        ),
    ],
)
def test_realsense_arguments_and_topics_follow_the_installed_rs_launch(
    fake_launch, version: str, rs_launch: str, rs_arguments: dict, base: str
) -> None:
    """Before 4.55 rs_launch.py takes rgb_camera.profile / depth_module.profile and no camera_namespace (a key it
    does not declare is dropped silently) and the node publishes /<camera_name>/color/image_raw; from 4.55 the
    *_profile keys and /<camera_namespace>/<camera_name>/... Both launch files pass the names of the installed
    version, log which set they found, and point the nodes at the topics that version publishes."""
    fake_launch(version, rs_launch)
    for name in ("record.launch.py", "policy.launch.py"):
        actions = _run_setup(name, spawn_controller="false")
        (include,) = _of(actions, "IncludeLaunchDescription")
        assert include.kwargs["launch_arguments"] == list(rs_arguments.items()), name
        assert include.args[0].args[0].endswith("realsense2_camera/launch/rs_launch.py")
        logged = " ".join(a.kwargs["msg"] for a in _of(actions, "LogInfo"))
        assert f"realsense-ros {version}: {'4.55+' if base == '/camera/camera' else '4.0-4.54'}" in logged, logged
        overrides = _node_overrides(actions)
        assert overrides["depth_topic"] == f"{base}/aligned_depth_to_color/image_raw", name
        if name == "record.launch.py":
            assert overrides["color_topic"] == f"{base}/color/image_raw"
            assert overrides["color_info_topic"] == f"{base}/color/camera_info"
            assert ("--color-topic /camera/color/image_raw" in logged) == (base == "/camera"), logged
        else:
            assert overrides["image_topic"] == f"{base}/color/image_raw"


def test_realsense_4_55_topics_are_the_node_and_bag_defaults(fake_launch) -> None:
    """With realsense-ros 4.55+ the topics passed are the ones the nodes and `ccol build-dataset` default to."""
    from ccol_policy.bags import BagTopics

    fake_launch("4.56.1", RS_LAUNCH_4_55_1)
    actions = _run_setup("record.launch.py", spawn_controller="false")
    overrides = _node_overrides(actions)
    assert (overrides["color_topic"], overrides["depth_topic"]) == (BagTopics().color, BagTopics().depth)
    for node in ("policy_node", "recorder_node"):
        table = _parameters(node)
        for key, value in overrides.items():
            if key.endswith("_topic") and key in table and key != "joint_states_topic":
                assert table[key].default == value, (node, key)


@pytest.mark.parametrize(
    "version,rs_launch,message",
    [
        ("3.2.3", RS_LAUNCH_3_2_3, r"realsense-ros 3\.2\.3: .*takes neither .*needs realsense-ros 4\.x"),
        ("2.3.2", None, r"realsense-ros 2\.3\.2 at .* has no launch/rs_launch\.py: ccol_bringup needs realsense-ros 4"),
    ],
)
def test_realsense_too_old_is_a_clear_error_at_launch(fake_launch, version: str, rs_launch: str, message: str) -> None:
    fake_launch(version, rs_launch)
    for name in ("record.launch.py", "policy.launch.py"):
        with pytest.raises(RuntimeError, match=message):
            _run_setup(name, spawn_controller="false")


def test_realsense_wiring_without_launch(fake_launch) -> None:
    """realsense_wiring alone: the argument sets read from the excerpts; a realsense.yaml key the installed
    rs_launch.py does not declare is an error rather than silently dropped."""
    from ccol_bringup.robot import realsense_launch_arguments, realsense_wiring

    old, new = realsense_launch_arguments(RS_LAUNCH_4_54_1), realsense_launch_arguments(RS_LAUNCH_4_55_1)
    assert {"rgb_camera.profile", "depth_module.profile", "align_depth.enable", "camera_name"} <= old
    assert "camera_namespace" not in old and "config_file" not in old  # LaunchConfiguration reads are not declared
    assert {"camera_namespace", "rgb_camera.color_profile", "depth_module.depth_profile"} <= new
    settings = {"camera_name": "d435i", "rgb_camera.color_profile": "640x480x30", "depth_module.depth_profile": "0"}
    assert realsense_wiring(old, settings).color_topic == "/d435i/color/image_raw"
    assert realsense_wiring(new, settings | {"camera_namespace": ""}).color_topic == "/d435i/color/image_raw"
    assert realsense_wiring(new, settings | {"camera_namespace": "arm"}).depth_topic == (
        "/arm/d435i/aligned_depth_to_color/image_raw"
    )
    rc = old | {"camera_namespace"}  # 4.55.1-RC: camera_namespace with the old profile names
    wiring = realsense_wiring(rc, settings | {"camera_namespace": "camera"})
    assert set(wiring.arguments) == {"camera_namespace", "camera_name", "rgb_camera.profile", "depth_module.profile"}
    assert wiring.color_topic == "/camera/d435i/color/image_raw"
    with pytest.raises(RuntimeError, match=r"realsense-ros 4\.54\.1: .*no 'rgb_camera\.color_format'"):
        realsense_wiring(old, settings | {"rgb_camera.color_format": "RGB8"}, "4.54.1")
