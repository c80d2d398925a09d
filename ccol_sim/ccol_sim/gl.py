"""Offscreen rendering without a display: EGL unless MUJOCO_GL says otherwise (MuJoCo reads it once, on import)."""

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"
