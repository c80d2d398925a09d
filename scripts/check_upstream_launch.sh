#!/usr/bin/env bash
# Developer check (not run by CI: it needs the upstream sources): export ros2/launch, launch_ros, osrf_pycommon,
# franka_ros2, franka_description, multipanda_ros2 and realsense-ros from local git mirrors, install xacro into a
# scratch directory, and execute ccol_bringup's launch files against them (scripts/check_upstream_launch.py).
#   MIRRORS=/path/to/mirrors scripts/check_upstream_launch.sh      # mirrors named owner+repo/repo (bare git)
# Refs: launch/launch_ros jazzy, franka_ros2 v3.4.0 (the Jazzy row; FRANKA_ROS2_REF=v2.5.0 for Humble).
set -euo pipefail
cd "$(dirname "$0")/.."
MIRRORS=${MIRRORS:-/work/.mirror}
OUT=${OUT:-/tmp/ccol_upstream}
FRANKA_ROS2_REF=${FRANKA_ROS2_REF:-v3.4.0}
PY=${PY:-.venv/bin/python}
rm -rf "$OUT" && mkdir -p "$OUT/src" "$OUT/site"
export_tree() {  # mirror ref destination; meshes are left out (large, not needed to process the descriptions)
  mkdir -p "$OUT/src/$3"
  git --git-dir "$MIRRORS/$1/repo" ls-tree -r --name-only "$2" | grep -vE '(meshes/|\.(dae|stl|STL|obj)$)' \
    | xargs -d '\n' git --git-dir "$MIRRORS/$1/repo" archive "$2" -- | tar -x -C "$OUT/src/$3"
}
export_tree ros2+launch jazzy launch
export_tree ros2+launch_ros jazzy launch_ros
export_tree osrf+osrf_pycommon HEAD osrf_pycommon
export_tree frankarobotics+franka_ros2 "$FRANKA_ROS2_REF" franka_ros2
export_tree frankarobotics+franka_description HEAD franka_description
export_tree tenfoldpaper+multipanda_ros2 HEAD multipanda_ros2
export_tree IntelRealSense+realsense-ros HEAD realsense-ros
"$PY" -m pip install --quiet --no-deps --target "$OUT/site" xacro
# composition_interfaces has no Python wheel; only launch_ros' LoadComposableNodes uses it (none of our launch
# files do), and launch_ros imports it at start-up: an importable placeholder in the scratch site only.
mkdir -p "$OUT/site/composition_interfaces"
: > "$OUT/site/composition_interfaces/__init__.py"
printf 'class LoadNode:\n    class Request: ...\n\n    class Response: ...\n' > "$OUT/site/composition_interfaces/srv.py"
export PATH="$OUT/site/bin:$PATH"  # xacro's command line (multipanda's launch runs it as a process substitution)
export PYTHONPATH="$OUT/src/launch/launch:$OUT/src/launch_ros/launch_ros:$OUT/src/osrf_pycommon:$OUT/site:${PYTHONPATH:-}"
"$PY" scripts/check_upstream_launch.py --src "$OUT/src" "$@"
