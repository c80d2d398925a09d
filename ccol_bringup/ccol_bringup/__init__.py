"""Launch-file helpers shared by record.launch.py and policy.launch.py (no logic beyond wiring)."""

from __future__ import annotations

import os


def package_share(name: str) -> str | None:
    """The share directory of an installed ROS package, or None when it is not installed."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return None
    try:
        return get_package_share_directory(name)
    except PackageNotFoundError:
        return None


def config_file(name: str) -> str:
    """A YAML file of ccol_bringup/config, installed or in the source tree."""
    share = package_share("ccol_bringup")
    candidates = [os.path.join(share, "config", name)] if share else []
    candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "config", name))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"ccol_bringup config {name} not found in {candidates}")
