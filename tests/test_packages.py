"""The packages' arrows: ccol_sim builds on ccol_policy, never the reverse; the simulator adds its own `ccol` verbs;
the control and data layer (and the recorder on it) import no torch."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_policy_and_bringup_never_import_the_simulator() -> None:
    files = [*(ROOT / "ccol_policy").rglob("*.py"), *(ROOT / "ccol_bringup").rglob("*.py")]
    assert len(files) > 20
    offenders = [str(f.relative_to(ROOT)) for f in files if "ccol_sim" in _imported_packages(f)]
    assert offenders == []


def test_package_xml_dependencies_point_down() -> None:
    def deps(package: str) -> set[str]:
        return set(re.findall(r"<exec_depend>(\w+)</exec_depend>", (ROOT / package / "package.xml").read_text()))

    assert "ccol_policy" in deps("ccol_sim")
    assert "ccol_sim" not in deps("ccol_policy") and "ccol_sim" not in deps("ccol_bringup")


def test_simulator_verbs_are_registered_through_the_entry_point() -> None:
    from ccol_policy.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["demo"])
    assert (args.episodes_per_task, args.eval_episodes, args.layout, args.approach_error_cm) == (100, 20, "paper", 0.0)
    assert parser.parse_args(["sim-record", "--out", "x"]).episodes_per_task == 20
    assert parser.parse_args(["sim-eval", "--checkpoint", "c"]).max_seconds == 12.0
    assert parser.parse_args(["ablate", "d"]).budget == "cpu"
    # the simulator's parts of the built-in verbs
    assert parser.parse_args(["replay", "e"]).replay_in_sim is not None
    assert parser.parse_args(["build-dataset", "b", "--out", "o"]).check_episodes is not None
    assert parser.parse_args(["eval-bag", "b", "--checkpoint", "c"]).scene_regions is not None


def test_control_layer_bag_tools_and_recorder_load_no_torch() -> None:
    modules = ["ccol_policy.robots", "ccol_policy.messages", "ccol_policy.control", "ccol_policy.bags"]
    if importlib.util.find_spec("rclpy") is not None:
        modules.append("ccol_teleop.recorder_node")
    code = (
        f"import sys; import {', '.join(modules)}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"{modules} loaded torch: {proc.stdout.strip()[:300]}"
    if "ccol_teleop.recorder_node" not in modules:
        pytest.skip("rclpy wheels not installed: the recorder's imports were not checked")
