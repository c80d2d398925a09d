#!/usr/bin/env bash
# Developer check (not run by CI: it needs the upstream sources): export ros2/launch, launch_ros, osrf_pycommon,
# franka_ros2 (each tag in FRANKA_ROS2_REFS), franka_description, multipanda_ros2, realsense-ros (each tag in
# REALSENSE_REFS, newest first: the first for the Jazzy rows, the last for the Humble rows), ros2_control and
# ros2_controllers (humble and jazzy) from local git mirrors, install xacro into a scratch directory, and execute
# ccol_bringup's launch files against them (scripts/check_upstream_launch.py), the spawner commands parsed by
# the real controller_manager spawner of each row.
#   MIRRORS=/path/to/mirrors scripts/check_upstream_launch.sh      # mirrors named owner+repo/repo (bare git)
# Refs: launch/launch_ros jazzy; franka_ros2 v2.2.0 (first `robot_type`), v2.4.0, v3.0.0 (package.xml says
# 2.0.2, `arm_id`), v3.4.0; ros2_control / ros2_controllers humble (franka_ros2 v2.x, multipanda) and jazzy (v3.x);
# realsense-ros 4.56.1 (camera_namespace, *_profile arguments) and 4.54.1 (rgb_camera.profile, no namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
MIRRORS=${MIRRORS:-/work/.mirror}
OUT=${OUT:-/tmp/ccol_upstream}
FRANKA_ROS2_REFS=${FRANKA_ROS2_REFS:-v3.4.0 v3.0.0 v2.4.0 v2.2.0}
REALSENSE_REFS=${REALSENSE_REFS:-4.56.1 4.54.1}
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
for ref in $FRANKA_ROS2_REFS; do export_tree frankarobotics+franka_ros2 "$ref" "franka_ros2@$ref"; done
for distro in humble jazzy; do
  export_tree ros-controls+ros2_control "$distro" "ros2_control@$distro"
  export_tree ros-controls+ros2_controllers "$distro" "ros2_controllers@$distro"
done
export_tree frankarobotics+franka_description HEAD franka_description
export_tree tenfoldpaper+multipanda_ros2 HEAD multipanda_ros2
for ref in $REALSENSE_REFS; do export_tree IntelRealSense+realsense-ros "$ref" "realsense-ros@$ref"; done
"$PY" -m pip install --quiet --no-deps --target "$OUT/site" xacro
# composition_interfaces has no Python wheel; only launch_ros' LoadComposableNodes uses it (none of our launch
# files do), and launch_ros imports it at start-up: an importable placeholder in the scratch site only.
mkdir -p "$OUT/site/composition_interfaces"
: > "$OUT/site/composition_interfaces/__init__.py"
printf 'class LoadNode:\n    class Request: ...\n\n    class Response: ...\n' > "$OUT/site/composition_interfaces/srv.py"
export PATH="$OUT/site/bin:$PATH"  # xacro's command line (multipanda's launch runs it as a process substitution)
export PYTHONPATH="$OUT/src/launch/launch:$OUT/src/launch_ros/launch_ros:$OUT/src/osrf_pycommon:$OUT/site:${PYTHONPATH:-}"
# shellcheck disable=SC2086  # one argument per tag
"$PY" scripts/check_upstream_launch.py --src "$OUT/src" --franka-refs $FRANKA_ROS2_REFS \
  --realsense-refs $REALSENSE_REFS "$@"
