"""Accuracy and smoothness figures shared by training validation, `ccol eval-bag` and `ccol sim-eval`.

Smoothness follows the paper's trajectory analysis: velocity v(t) = a[t+1] - a[t], acceleration
c(t) = a[t+2] - 2 a[t+1] + a[t]; their fluctuation is the standard deviation over time (averaged over joints),
and the minimum acceleration is the most negative c (sudden deceleration; closer to 0 is better).
"""

from __future__ import annotations

import numpy as np


def smoothness(traj: np.ndarray) -> dict[str, float]:
    """traj (T, A) -> velocity/acceleration fluctuation and minimum acceleration (NaN when T is too short)."""
    traj = np.asarray(traj, np.float64)
    nan = float("nan")
    if traj.ndim != 2 or len(traj) < 3:
        return {"velocity_fluctuation": nan, "acceleration_fluctuation": nan, "min_acceleration": nan}
    v = np.diff(traj, axis=0)
    c = traj[2:] - 2 * traj[1:-1] + traj[:-2]
    return {
        "velocity_fluctuation": float(v.std(0).mean()),
        "acceleration_fluctuation": float(c.std(0).mean()),
        "min_acceleration": float(c.min()),
    }


def mean_smoothness(trajs: list[np.ndarray]) -> dict[str, float]:
    """Average of `smoothness` over several trajectories (e.g. the chunks of a validation pass)."""
    rows = [smoothness(t) for t in trajs if len(t) >= 3]
    if not rows:
        return smoothness(np.zeros((0, 1)))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def horizon_errors(pred: np.ndarray, target: np.ndarray, valid: np.ndarray, horizons: list[int]) -> dict[str, float]:
    """pred/target (N, k, A), valid (N, k) -> L1 and RMSE over the first h steps of each chunk, per horizon."""
    out: dict[str, float] = {}
    for h in horizons:
        m = valid[:, :h, None].astype(np.float64)
        n = max(m.sum() * pred.shape[-1], 1.0)
        err = pred[:, :h] - target[:, :h]
        out[f"l1@{h}"] = float((np.abs(err) * m).sum() / n)
        out[f"rmse@{h}"] = float(np.sqrt((err**2 * m).sum() / n))
    return out


def per_joint_l1(pred: np.ndarray, target: np.ndarray, valid: np.ndarray) -> list[float]:
    """Mean absolute error per action dimension over the valid steps. pred/target (N, k, A), valid (N, k)."""
    m = valid[..., None].astype(np.float64)
    return ((np.abs(pred - target) * m).sum((0, 1)) / np.maximum(m.sum((0, 1)), 1.0)).tolist()


def patch_coverage(mask: np.ndarray, grid: int) -> np.ndarray:
    """(H, W) bool region -> (grid, grid) fraction of each patch it covers; the frame is stretched onto the
    square patch grid, as the vision encoder resizes it."""
    h, w = mask.shape
    rows = np.linspace(0, h, grid + 1).round().astype(int)
    cols = np.linspace(0, w, grid + 1).round().astype(int)
    m = mask.astype(np.float64)
    return np.array(
        [[m[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].mean() for j in range(grid)] for i in range(grid)]
    )


def attention_share(patch_attention: np.ndarray, coverage: np.ndarray) -> tuple[float, float]:
    """A word's attention over the image patches (grid*grid,) and an object's patch coverage (grid, grid) ->
    (share of the word's patch attention on patches the object touches, share those patches have of the grid:
    what uniform attention would give)."""
    on = coverage.reshape(-1) > 0
    total = float(patch_attention.sum())
    share = float(patch_attention[on].sum()) / total if total > 0 else float("nan")
    return share, float(on.mean())
