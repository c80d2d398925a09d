"""Launch files and their YAML: run them where `launch` imports, otherwise check everything they name exists."""

from __future__ import annotations

import ast
import importlib.util
import re
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


def test_policy_yaml_matches_node_parameters() -> None:
    from ccol_policy.policy_node import DEFAULTS

    params = yaml.safe_load((ROOT / "ccol_bringup" / "config" / "policy.yaml").read_text())["policy_node"]
    assert set(params["ros__parameters"]) == set(DEFAULTS)
    for key, value in params["ros__parameters"].items():
        assert type(value) is type(DEFAULTS[key]), key


def test_record_yaml_matches_node_parameters() -> None:
    from ccol_teleop.recorder_node import DEFAULTS

    params = yaml.safe_load((ROOT / "ccol_bringup" / "config" / "record.yaml").read_text())["recorder_node"]
    assert params["ros__parameters"] == DEFAULTS


@pytest.mark.parametrize(
    "name,args",
    [
        (
            "policy.launch.py",
            {"instruction", "checkpoint", "device", "rate_hz", "arm_id", "robot_ip", "execution_mode", "use_sim"},
        ),
        (
            "record.launch.py",
            {"instruction", "output_dir", "arm_id", "robot_ip", "use_realsense_ros", "record_depth", "use_sim"},
        ),
    ],
)
def test_launch_arguments(name: str, args: set[str]) -> None:
    tree = ast.parse((ROOT / "ccol_bringup" / "launch" / name).read_text())
    declared = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "ARGS")
    assert args <= {k.value for k in declared.value.keys}
