"""A small synthetic multi-instruction data set: the embedded default before any robot or simulator.

One table-top scene holds a pen, a red cube, a blue cube and a green target zone, placed from a seed. The
instruction decides which object the arm goes for and what it does with it, so a policy can only succeed by
reading both the image and the words. Joint trajectories are minimum-jerk segments through task waypoints whose
joint configurations depend on the object positions through a fixed smooth map (a stand-in for inverse
kinematics); the image shows the objects and the projected gripper position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ccol_policy.data import write_episode

TASKS = ("lift the pen", "slide the cube", "place the cubes")
# Panda ready pose: 7 joints (rad) + gripper width (m).
HOME = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785, 0.08], np.float32)
OPEN, CLOSED = 0.08, 0.01
# Fixed smooth map from a table position (x, y in [0, 1]) and a height (0..1) to joint offsets.
_IK_X = np.array([0.10, 0.45, 0.05, 0.60, 0.00, -0.25, 0.00])
_IK_Y = np.array([0.80, 0.05, 0.20, 0.00, 0.10, 0.00, 0.60])
_IK_Z = np.array([0.00, -0.35, 0.00, -0.45, 0.00, 0.30, 0.00])


def joint_config(x: float, y: float, z: float, gripper: float) -> np.ndarray:
    """Joint positions that put the gripper above table point (x, y) at height z (synthetic kinematics)."""
    q = HOME[:7] + _IK_X * (x - 0.5) + _IK_Y * (y - 0.5) + _IK_Z * z + 0.05 * np.sin(3 * x) * np.cos(2 * y)
    return np.append(q, gripper).astype(np.float32)


def gripper_xy(q: np.ndarray) -> tuple[float, float]:
    """Inverse of `joint_config` in (x, y), for drawing the gripper (least squares on joints 1, 2 and 7)."""
    d = q[:7] - HOME[:7]
    a = np.stack([_IK_X, _IK_Y], 1)[[0, 1, 6]]
    xy, *_ = np.linalg.lstsq(a, d[[0, 1, 6]], rcond=None)
    return float(xy[0] + 0.5), float(xy[1] + 0.5)


def min_jerk(q0: np.ndarray, q1: np.ndarray, n: int) -> np.ndarray:
    """n samples of a minimum-jerk segment from q0 to q1 (excluding q0, including q1)."""
    s = np.linspace(0, 1, n + 1)[1:, None]
    return q0 + (q1 - q0) * (10 * s**3 - 15 * s**4 + 6 * s**5)


@dataclass
class Scene:
    pen: np.ndarray  # (x, y)
    red: np.ndarray
    blue: np.ndarray
    zone: np.ndarray

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Scene:
        # four well-separated positions in the unit square
        while True:
            pts = rng.uniform(0.15, 0.85, size=(4, 2))
            dists = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(4)
            if dists.min() > 0.25:
                return cls(*pts)


def waypoints(scene: Scene, task: str) -> list[tuple[np.ndarray, int]]:
    """Joint-space waypoints and the number of control steps to reach each."""
    if task == "lift the pen":
        x, y = scene.pen
        return [
            (joint_config(x, y, 0.3, OPEN), 30),
            (joint_config(x, y, 0.0, OPEN), 15),
            (joint_config(x, y, 0.0, CLOSED), 8),
            (joint_config(x, y, 0.6, CLOSED), 25),
        ]
    if task == "slide the cube":
        (x, y), (zx, zy) = scene.red, scene.zone
        return [
            (joint_config(x, y, 0.3, CLOSED), 30),
            (joint_config(x, y, 0.05, CLOSED), 15),
            (joint_config(zx, zy, 0.05, CLOSED), 35),
        ]
    if task == "place the cubes":
        (x, y), (bx, by) = scene.red, scene.blue
        return [
            (joint_config(x, y, 0.3, OPEN), 25),
            (joint_config(x, y, 0.0, OPEN), 12),
            (joint_config(x, y, 0.0, CLOSED), 8),
            (joint_config(bx, by, 0.4, CLOSED), 30),
            (joint_config(bx, by, 0.2, OPEN), 10),
        ]
    raise ValueError(f"unknown synthetic task {task!r}; tasks: {TASKS}")


def render(scene: Scene, q: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8 top view: table, zone, objects and the gripper (a ring that shrinks as it closes)."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (150, 120, 90)
    yy, xx = np.mgrid[0:size, 0:size] / size

    def box(c: np.ndarray, half: tuple[float, float], colour: tuple[int, int, int]) -> None:
        img[(abs(xx - c[0]) < half[0]) & (abs(yy - c[1]) < half[1])] = colour

    box(scene.zone, (0.09, 0.09), (60, 170, 60))
    box(scene.pen, (0.10, 0.025), (240, 240, 240))
    box(scene.red, (0.05, 0.05), (210, 40, 40))
    box(scene.blue, (0.05, 0.05), (40, 60, 210))
    gx, gy = gripper_xy(q)
    r = np.hypot(xx - gx, yy - gy)
    radius = 0.03 + 0.4 * float(q[7])
    img[(r < radius) & (r > radius - 0.025)] = (20, 20, 20)
    return img


def make_episode(task: str, seed: int, image_size: int = 64) -> dict[str, np.ndarray]:
    """One demonstration: qpos (T, 8), action (T, 8) = next commanded qpos, images (T, S, S, 3)."""
    rng = np.random.default_rng(seed)
    scene = Scene.sample(rng)
    start = HOME + np.append(rng.normal(0, 0.02, 7), 0).astype(np.float32)
    path = [start[None]]
    current = start
    for target, steps in waypoints(scene, task):
        jitter = np.append(rng.normal(0, 0.01, 7), 0).astype(np.float32)  # human-like variation
        seg = min_jerk(current, target + jitter, int(steps * rng.uniform(0.9, 1.1)))
        path.append(seg)
        current = seg[-1]
    path.append(np.repeat(current[None], 5, 0))  # hold at the end
    traj = np.concatenate(path).astype(np.float32)
    qpos = traj[:-1]
    action = traj[1:]
    images = np.stack([render(scene, q, image_size) for q in qpos])
    return {"qpos": qpos, "action": action, "images": images}


def make_dataset(out_dir: str | Path, episodes_per_task: int, seed: int = 0, image_size: int = 64) -> list[Path]:
    """Write episodes_per_task episodes of every task as HDF5 episodes; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(episodes_per_task):
        for j, task in enumerate(TASKS):
            ep = make_episode(task, seed * 100_003 + i * len(TASKS) + j, image_size)
            path = out / f"episode_{len(paths):04d}.hdf5"
            write_episode(
                path,
                ep["qpos"],
                ep["action"],
                {"color": ep["images"]},
                task,
                source="synthetic",
                control_rate_hz=20.0,
                sim=True,
                success=True,
            )
            paths.append(path)
    return paths
