#!/usr/bin/env bash
# Source ROS 2 and the workspace, then run the command (default: a shell).
set -e
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
source /ws/install/setup.bash
exec "$@"
