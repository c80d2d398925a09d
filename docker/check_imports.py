"""Build-time check of the robot image's Python: docker/Dockerfile runs `/entrypoint.sh python3 check_imports.py`,
so this runs with the nodes' interpreter (apt's python3) and the entrypoint's PYTHONPATH (ROS, the workspace, then
the venv /opt/ccol-venv). ROS's apt-built extensions and the venv's locked set must load together in one process:

- numpy is the venv's, at the lock's pin (a numpy 1.x that apt's extensions load, see the lock's header), and every
  package of /opt/ccol-venv/requirements.lock is found first at its locked version;
- rclpy and sensor_msgs: a CameraInfo (k: numpy float64[9]) and a JointState round-trip through rclpy's
  serialisation (the message package's C conversion, built against apt's numpy);
- cv_bridge: an image through cv2 and cv_bridge's boost converter (compiled against apt's numpy);
- torch (CUDA build) shares memory with numpy; transformers imports RobertaModel (ccol_policy's text encoder);
  pyrealsense2 (direct capture) loads.

Any failure raises, so the RUN step and the build fail.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

VENV = Path("/opt/ccol-venv")
LOCK = VENV / "requirements.lock"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"check_imports: {message}")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_lock() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_canonical(name)] = version.strip()
    wrong = {}
    for name, version in pins.items():
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            found = None
        if found != version:
            wrong[name] = (version, found)
    _require(not wrong, f"not the locked versions (lock, found first on sys.path): {wrong}")
    return pins


def check_numpy(pins: dict[str, str]) -> None:
    import numpy

    _require(
        numpy.__file__.startswith(f"{VENV}/") and numpy.__version__ == pins["numpy"],
        f"numpy {numpy.__version__} from {numpy.__file__}: want the lock's {pins['numpy']} from {VENV}",
    )


def check_ros_messages() -> None:
    import numpy as np
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import CameraInfo, JointState

    info = deserialize_message(serialize_message(CameraInfo(k=np.arange(9.0))), CameraInfo)
    _require(isinstance(info.k, np.ndarray) and info.k[4] == 4.0, f"CameraInfo.k after serialisation: {info.k!r}")
    joints = deserialize_message(serialize_message(JointState(name=["j1"], position=[0.5])), JointState)
    _require(list(joints.position) == [0.5], f"JointState.position after serialisation: {joints.position!r}")


def check_cv_bridge() -> None:
    import numpy as np
    from cv_bridge import CvBridge

    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255
    bridge = CvBridge()
    msg = bridge.cv2_to_imgmsg(rgb, encoding="rgb8")
    bgr = bridge.imgmsg_to_cv2(msg, desired_encoding="bgr8")  # cv_bridge_boost.cvtColor2
    _require(bgr.shape == (2, 3, 3) and (bgr[..., 2] == 255).all() and (bgr[..., 0] == 0).all(), f"bgr8: {bgr!r}")


def check_torch_transformers() -> str:
    import numpy as np
    import torch
    from transformers import RobertaModel  # noqa: F401

    array = np.arange(6.0).reshape(2, 3)
    tensor = torch.from_numpy(array)
    tensor[0, 0] = 7.0
    _require(array[0, 0] == 7.0 and (torch.arange(3).numpy() == np.arange(3)).all(), "torch <-> numpy")
    _require(bool(torch.version.cuda), f"torch {torch.__version__} is not a CUDA build")
    return f"torch {torch.__version__} (CUDA {torch.version.cuda})"


def main() -> None:
    pins = check_lock()
    check_numpy(pins)
    check_ros_messages()
    check_cv_bridge()
    torch_line = check_torch_transformers()
    import pyrealsense2  # noqa: F401

    sys.stdout.write(
        f"check_imports: Python {sys.version.split()[0]}, numpy {pins['numpy']}, {torch_line}, "
        f"transformers {pins['transformers']}, rclpy, sensor_msgs, cv_bridge, pyrealsense2: ok; "
        f"{len(pins)} locked packages at their versions\n"
    )


if __name__ == "__main__":
    main()
