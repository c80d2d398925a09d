#!/usr/bin/env bash
# Source ROS 2 and the workspace, then run the command (default: a shell).
set -e
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
source /ws/install/setup.bash
# The locked Python set (docker/requirements.lock) lives in a venv, after ROS's paths; nothing is installed over
# the apt-owned packages of the system Python.
PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(/opt/ccol-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export PYTHONPATH
exec "$@"
