"""Shared fixtures: tiny configurations built in the test (no hub weights) and synthetic episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ccol_policy.config import CCoLConfig, load_config

TINY: dict[str, Any] = {
    "vision": {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "intermediate_size": 64,
    },
    "text": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
    "model": {
        "chunk_size": 10,
        "hidden_dim": 32,
        "latent_dim": 8,
        "num_heads": 2,
        "dim_feedforward": 64,
        "dropout": 0.0,
        "proprio_layers": 1,
        "fusion_layers": 1,
        "ode": {"hidden_size": 32, "num_blocks": 1},
    },
    "optim": {"optimizer": "adamw", "lr": 1e-3, "batch_size": 8, "warmup_steps": 0},
    "train": {"steps": 20, "eval_every": 10, "save_every": 10, "log_every": 5, "val_batches": 2},
    "data": {"num_workers": 0, "cache_images": True, "val_fraction": 0.2},
}


def tiny_config(ablation: str | None = None, **overrides: Any) -> CCoLConfig:
    return load_config(TINY, overrides=overrides, ablation=ablation)


@pytest.fixture
def tiny_cfg() -> CCoLConfig:
    cfg = tiny_config()
    cfg.text.vocab = ["cube", "cubes", "lift", "pen", "place", "slide", "the"]
    return cfg


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ccol_policy.synthetic import make_dataset

    d = tmp_path_factory.mktemp("synthetic")
    make_dataset(d, episodes_per_task=3, seed=0, image_size=32)
    return d


def cubic_accelerations(q0: np.ndarray, v0: np.ndarray, dt: float, positions: np.ndarray, velocities: np.ndarray):
    """The largest |acceleration| per joint that joint_trajectory_controller's cubic interpolation (points with
    positions and velocities) demands from the state (q0, v0) through points every dt. A cubic's acceleration is
    linear in time, so its extremes are at the segment ends."""
    p = np.vstack([q0[None], positions])
    v = np.vstack([v0[None], velocities])
    dp, h = p[1:] - p[:-1], dt
    a_start = (6 * dp - h * (4 * v[:-1] + 2 * v[1:])) / h**2
    a_end = (-6 * dp + h * (2 * v[:-1] + 4 * v[1:])) / h**2
    return np.maximum(np.abs(a_start), np.abs(a_end)).max(axis=0)
