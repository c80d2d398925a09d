#!/usr/bin/env bash
# Source ROS 2 and the workspace, then run the command (default: a shell).
set -e
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
source /ws/install/setup.bash
# The locked Python set (the row's docker/requirements-py3XX.lock, copied to /opt/ccol-venv/requirements.lock) lives
# in a venv, after ROS's paths and before the system Python's dist-packages; nothing is installed over the apt-owned
# packages. So the venv's numpy is the one ROS's apt-built extensions (message packages, cv_bridge, cv2) load: each
# lock pins a numpy 1.x that keeps the ABI of the distro's python3-numpy they were built against (see the lock).
# docker/check_imports.py checks this environment at build time.
PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(/opt/ccol-venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export PYTHONPATH
exec "$@"
