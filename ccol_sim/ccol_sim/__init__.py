"""Simulated Panda world for CCoL-ROS: MuJoCo scene, scripted teachers, ROS node and closed-loop evaluation."""

import os

# Offscreen rendering without a display: EGL (MuJoCo reads MUJOCO_GL when it is first imported).
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
