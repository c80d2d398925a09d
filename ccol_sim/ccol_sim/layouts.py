"""Scene layouts by name: where the pen, the cubes and the zone start, and who demonstrates in them. numpy only,
so that the CLI can name them without loading the simulator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Layout:
    pen: np.ndarray  # (x, y, yaw)
    red: np.ndarray  # (x, y)
    blue: np.ndarray
    zone: np.ndarray


def _wide(rng: np.random.Generator) -> Layout:
    """Four well-separated spots anywhere in the arm's reach (x 0.38..0.62, y -0.2..0.2)."""
    while True:
        pts = np.column_stack([rng.uniform(0.38, 0.62, 4), rng.uniform(-0.2, 0.2, 4)])
        d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(4)
        if d.min() > 0.13:
            return Layout(np.append(pts[0], rng.uniform(-0.5, 0.5)), pts[1], pts[2], pts[3])


HOME = {"pen": (0.5, 0.0), "red": (0.4, -0.1), "blue": (0.6, -0.1), "zone": (0.5, 0.2)}  # the scene's usual places
PAPER_SHIFT, PAPER_YAW = 0.03, 0.3  # the paper layout's randomisation: +-3 cm per axis, pen yaw +-0.3 rad


def _paper(rng: np.random.Generator) -> Layout:
    """The paper's real-world protocol: every object at its usual place, its initial position randomised
    (uniform +-3 cm per axis, the pen's yaw +-0.3 rad)."""
    at = {k: np.asarray(v) + rng.uniform(-PAPER_SHIFT, PAPER_SHIFT, 2) for k, v in HOME.items()}
    return Layout(np.append(at["pen"], rng.uniform(-PAPER_YAW, PAPER_YAW)), at["red"], at["blue"], at["zone"])


LAYOUTS = {"wide": _wide, "paper": _paper}
DEFAULT_LAYOUT = "paper"  # recordings, sim-eval and the demo
TEACHERS = ("scripted", "human")  # who demonstrates (`ccol_sim.teacher`): one way, or as a person guiding by hand
UNNAMED_LAYOUT = "wide"  # the layout of episodes recorded before layouts had names (no "layout" in their metadata)


def sample_layout(rng: np.random.Generator, layout: str = DEFAULT_LAYOUT) -> Layout:
    """The scene layout `layout` ("wide": anywhere in reach; "paper": usual places +-3 cm) drawn from rng."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown scene layout {layout!r}; layouts: {sorted(LAYOUTS)}")
    return LAYOUTS[layout](rng)
