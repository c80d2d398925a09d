"""Forward kinematics of the Franka arm (Panda and FR3 share it) and the fingertip floor of the safety stage.

The Denavit-Hartenberg parameters (Craig's convention) are those of Franka's documentation ("Robot and interface
specifications"); the TCP is franka_description's `hand_tcp` (0.1034 m along the flange's z, turned -45 deg), 9.5 mm
above the fingertips. Checked against the simulator's Panda: its end-effector site within 0.5 mm (tests/test_sim.py).
"""

from __future__ import annotations

import numpy as np

# rows: (a, d, alpha) of joints 1..7 and the flange (theta 0)
DH = np.array(
    [
        [0.0, 0.333, 0.0],
        [0.0, 0.0, -np.pi / 2],
        [0.0, 0.316, np.pi / 2],
        [0.0825, 0.0, np.pi / 2],
        [-0.0825, 0.384, -np.pi / 2],
        [0.0, 0.0, np.pi / 2],
        [0.088, 0.0, np.pi / 2],
        [0.0, 0.107, 0.0],
    ]
)
HAND_TCP_M = 0.1034  # flange to hand_tcp
DAMPING = 1e-3  # of the least-squares step, near singular poses


def _dh(a: float, d: float, alpha: float, theta: np.ndarray) -> np.ndarray:
    """Craig's link transform RotX(alpha) TransX(a) RotZ(theta) TransZ(d) for thetas (N,) -> (N, 4, 4)."""
    ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
    t = np.zeros((len(theta), 4, 4))
    t[:, 0, 0], t[:, 0, 1], t[:, 0, 3] = ct, -st, a
    t[:, 1, 0], t[:, 1, 1], t[:, 1, 2], t[:, 1, 3] = st * ca, ct * ca, -sa, -sa * d
    t[:, 2, 0], t[:, 2, 1], t[:, 2, 2], t[:, 2, 3] = st * sa, ct * sa, ca, ca * d
    t[:, 3, 3] = 1.0
    return t


def joint_frames(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q (N, 7) -> frames of joints 1..7 (N, 7, 4, 4) in the base frame and the TCP frame (N, 4, 4)."""
    q = np.atleast_2d(np.asarray(q, np.float64))[:, :7]
    t = np.broadcast_to(np.eye(4), (len(q), 4, 4)).copy()
    frames = []
    for i in range(7):
        t = t @ _dh(*DH[i], q[:, i])
        frames.append(t)
    tcp = t @ _dh(*DH[7], np.full(len(q), -np.pi / 4))  # the flange, turned to the hand's -45 deg
    tcp[:, :3, 3] += HAND_TCP_M * tcp[:, :3, 2]
    return np.stack(frames, 1), tcp


def tcp_jacobian(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q (N, 7) -> TCP positions (N, 3) and geometric Jacobians (N, 6, 7): linear rows, then angular."""
    frames, tcp = joint_frames(q)
    z = frames[:, :, :3, 2]  # (N, 7, 3) joint axes
    p = frames[:, :, :3, 3]
    tip = tcp[:, :3, 3]
    lin = np.cross(z, tip[:, None, :] - p)  # (N, 7, 3)
    return tip, np.concatenate([lin, z], axis=2).transpose(0, 2, 1)


class FingertipFloor:
    """Joint targets whose fingertips would go below `min_z` (m, base frame) are moved to put them at `min_z`,
    keeping the hand's x, y and orientation (a few least-squares steps along the Jacobian). A policy a few
    millimetres low otherwise presses the fingers into the table, where friction stops them closing, and on the
    robot a stiff joint controller pushing into the table trips Franka's contact reflexes."""

    def __init__(self, min_z: float, iterations: int = 3) -> None:
        self.min_z = min_z
        self.iterations = iterations

    def apply(self, q: np.ndarray) -> tuple[np.ndarray, int]:
        """q (N, 7+) -> corrected copy and how many of the N targets were raised."""
        out = np.array(q, np.float64)
        idx = np.arange(len(out))
        tip, jac = tcp_jacobian(out[:, :7])
        raised = int((tip[:, 2] < self.min_z).sum())
        for _ in range(self.iterations):
            dz = self.min_z - tip[:, 2]
            still = dz > 1e-6
            idx, dz, jac = idx[still], dz[still], jac[still]
            if not len(idx):
                break
            err = np.zeros((len(idx), 6))
            err[:, 2] = dz
            # damped least squares: the smallest joint change that moves the TCP up by dz, x, y and orientation kept
            jjt = jac @ jac.transpose(0, 2, 1) + DAMPING**2 * np.eye(6)
            out[idx, :7] += np.einsum("nji,nj->ni", jac, np.linalg.solve(jjt, err[..., None])[..., 0])
            tip, jac = tcp_jacobian(out[idx, :7])
        return out, raised
