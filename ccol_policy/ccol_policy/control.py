"""ROS-free control logic of the policy node: observation checks, joint limits, the first-step bound, timing.

The node (`policy_node.py`) only translates messages into these calls, so everything that decides whether the
robot moves is tested without ROS.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from ccol_policy.policy import ObservationError


@dataclass(frozen=True)
class ArmLimits:
    lower: np.ndarray  # (7,) rad
    upper: np.ndarray  # (7,) rad
    velocity: np.ndarray  # (7,) rad/s
    gripper_max_width: float = 0.08  # m (Franka Hand)


# Franka datasheets (Panda: "Robot and interface specifications"; FR3: "Franka Research 3" datasheet).
LIMITS: dict[str, ArmLimits] = {
    "panda": ArmLimits(
        lower=np.array([-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]),
        upper=np.array([2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]),
        velocity=np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]),
    ),
    "fr3": ArmLimits(
        lower=np.array([-2.7437, -1.7837, -2.9007, -3.0421, -2.8065, 0.5445, -3.0159]),
        upper=np.array([2.7437, 1.7837, 2.9007, -0.1518, 2.8065, 4.5169, 3.0159]),
        velocity=np.array([2.62, 2.62, 2.62, 2.62, 5.26, 4.18, 5.26]),
    ),
}


def arm_joint_names(arm_id: str) -> list[str]:
    return [f"{arm_id}_joint{i}" for i in range(1, 8)]


def finger_joint_names(arm_id: str) -> list[str]:
    return [f"{arm_id}_finger_joint1", f"{arm_id}_finger_joint2"]


def limits_for(arm_id: str) -> ArmLimits:
    """Limits by arm_id; ids like "fr3_left" use the limits of their model prefix."""
    for model, limits in LIMITS.items():
        if arm_id == model or arm_id.startswith(model + "_"):
            return limits
    raise ValueError(f"unknown arm_id {arm_id!r}: use 'panda' or 'fr3' (or a prefixed id like 'fr3_left')")


def image_to_rgb(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB. Raises ObservationError for encodings we cannot use."""
    enc = encoding.lower()
    if enc not in ("rgb8", "bgr8", "rgba8", "bgra8"):
        raise ObservationError(f"image: unsupported encoding {encoding!r}; publish rgb8 or bgr8")
    channels = 4 if enc.endswith("a8") else 3
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), np.uint8)
    if step < width * channels or len(buf) < step * height:
        raise ObservationError(f"image: {len(buf)} bytes do not hold {height}x{width} {encoding} (step {step})")
    img = buf[: step * height].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    img = img[..., :3]
    if enc.startswith("bgr"):
        img = img[..., ::-1]
    return np.ascontiguousarray(img)


def depth_to_metres(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """16UC1 (mm, realsense-ros default) or 32FC1 (m) depth -> (H, W) float32 metres."""
    enc = encoding.upper()
    dtype = {"16UC1": np.dtype("<u2"), "MONO16": np.dtype("<u2"), "32FC1": np.dtype("<f4")}.get(enc)
    if dtype is None:
        raise ObservationError(f"depth: unsupported encoding {encoding!r}; publish 16UC1 (mm) or 32FC1 (m)")
    raw = bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()
    if len(raw) < step * height or step < width * dtype.itemsize:
        raise ObservationError(f"depth: {len(raw)} bytes do not hold {height}x{width} {encoding}")
    rows = np.frombuffer(raw[: step * height], np.uint8).reshape(height, step)[:, : width * dtype.itemsize]
    d = rows.copy().view(dtype).reshape(height, width).astype(np.float32)
    d = d / 1000.0 if dtype.kind == "u" else d
    return np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0)


def gripper_command(predicted: float, measured: float, squeeze: float = 0.01, max_width: float = 0.08) -> float:
    """The width to command for a predicted width.

    Kinesthetic demonstrations record the *measured* finger width, which stops at the object's size when the hand
    closes on it; commanding exactly that width would hold the object without force. When the policy asks for a
    width at or below the measured one (closing, or holding something), command `squeeze` less so the fingers
    keep pressing; opening commands pass through.
    """
    if predicted <= measured + 0.002 and predicted < max_width - 0.005:
        return max(0.0, predicted - squeeze)
    return min(max(predicted, 0.0), max_width)


class SafetyFilter:
    """Turns a predicted chunk into joint targets the controller may execute, or a reason to hold.

    Positions are clamped to the joint limits (minus a margin) and the gripper to [0, max width]. The first
    target may not be further from the measured joints than `max_first_step` radians, and consecutive targets
    may not be further apart than the joint velocity limits allow at the control period: either violation holds.
    """

    def __init__(
        self, arm_id: str, dt: float, max_first_step: float = 0.1, velocity_scale: float = 1.0, margin: float = 0.01
    ) -> None:
        self.limits = limits_for(arm_id)
        self.dt = dt
        self.max_first_step = max_first_step
        self.max_step = self.limits.velocity * velocity_scale * dt  # (7,) rad per control period
        self.lower = self.limits.lower + margin
        self.upper = self.limits.upper - margin

    def filter(self, targets: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, str | None]:
        """targets (n, 7 or 8) robot units, measured (7 or 8,) -> (clamped targets, hold reason or None)."""
        if not np.isfinite(targets).all():
            return targets, "policy output contains NaN or inf"
        out = targets.copy()
        out[:, :7] = np.clip(out[:, :7], self.lower, self.upper)
        if out.shape[1] > 7:
            out[:, 7] = np.clip(out[:, 7], 0.0, self.limits.gripper_max_width)
        first = np.abs(out[0, :7] - measured[:7])
        if first.max() > self.max_first_step:
            j = int(first.argmax())
            return out, (
                f"first target of joint {j + 1} is {first[j]:.3f} rad from the measured position "
                f"(max_first_step {self.max_first_step} rad)"
            )
        steps = np.abs(np.diff(out[:, :7], axis=0))
        if len(steps) and (steps > self.max_step).any():
            i, j = np.argwhere(steps > self.max_step)[0]
            return out, (
                f"joint {j + 1} would move {steps[i, j]:.3f} rad in one control period at step {i + 1} "
                f"(velocity bound {self.max_step[j]:.3f})"
            )
        return out, None


class LatencyWindow:
    """Median and p99 over the last `size` samples, in fixed memory."""

    def __init__(self, size: int = 500) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def median(self) -> float:
        return float(np.median(self._values)) if self._values else float("nan")

    def p99(self) -> float:
        return float(np.percentile(self._values, 99)) if self._values else float("nan")
