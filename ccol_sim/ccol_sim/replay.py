"""`ccol replay` in the simulator: recorded episodes' action labels, open loop, through the policy's command path.

Each episode's scene is restored from its seed (`episode.json` of a bag, the `seed` attribute of an HDF5
episode), then every control period the labels from that step on are handed to the same `ClosedLoopExecutor`
and gripper command as a policy's chunks. Success per episode says whether the data can teach the task at all:
a perfect imitator of labels that fail here fails too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ccol_policy.bags import BagTopics, SyncConfig, find_bags, read_metadata, read_streams, synchronise
from ccol_policy.config import preset_chunk_size
from ccol_policy.control import DEFAULT_CONTROL_RATE_HZ, control_rate_hz
from ccol_sim.env import PandaTable
from ccol_sim.layouts import UNNAMED_LAYOUT
from ccol_sim.parallel import run_jobs
from ccol_sim.sim_eval import run_episode, sim_executor, wilson_interval

log = logging.getLogger(__name__)


@dataclass
class ReplayEpisode:
    name: str
    instruction: str
    seed: int
    action: np.ndarray  # (T, A) robot units at rate_hz
    rate_hz: float
    layout: str = UNNAMED_LAYOUT  # the scene layout the demonstration was recorded in (`ccol_sim.layouts.LAYOUTS`)


@dataclass
class ReplayRow:
    name: str
    instruction: str
    seed: int
    success: bool  # by the end state
    first_instant: bool  # the task's test passed at some control period
    steps: int
    holds: int


def load_replay_episodes(
    paths: list[str | Path], rate_hz: float = DEFAULT_CONTROL_RATE_HZ, arm_id: str = "panda"
) -> list[ReplayEpisode]:
    """HDF5 episodes (files or dataset directories) and episode bags -> labels with their scene seeds."""
    out: list[ReplayEpisode] = []
    files: list[Path] = []
    bag_inputs: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.suffix == ".hdf5":
            files.append(p)
        elif p.is_dir() and sorted(p.glob("episode_*.hdf5")):
            files.extend(sorted(p.glob("episode_*.hdf5")))
        else:
            bag_inputs.append(p)
    for f in files:
        with h5py.File(f, "r") as h:
            if "seed" not in h.attrs:
                raise ValueError(f"{f}: no 'seed' attribute; only simulator episodes can be replayed in the simulator")
            rate = control_rate_hz(h.attrs, rate_hz)
            layout = str(h.attrs.get("layout", UNNAMED_LAYOUT))
            out.append(
                ReplayEpisode(f.name, str(h.attrs["instruction"]), int(h.attrs["seed"]), h["action"][:], rate, layout)
            )
    if bag_inputs:
        cfg = SyncConfig(control_rate_hz=rate_hz, image_width=8, image_height=8)
        for bag in find_bags(bag_inputs):
            meta = read_metadata(bag)
            if "seed" not in meta:
                raise ValueError(f"{bag}: episode.json has no 'seed'; only simulator episodes replay in the simulator")
            ep = synchronise(read_streams(bag, BagTopics(arm_id=arm_id), cfg), cfg, where=str(bag))
            layout = str(meta.get("layout", UNNAMED_LAYOUT))
            out.append(ReplayEpisode(bag.name, ep.instruction, int(meta["seed"]), ep.action, rate_hz, layout))
    if not out:
        raise FileNotFoundError(f"no HDF5 episodes or episode bags in {[str(p) for p in paths]}")
    return out


def replay_in_sim(
    episodes: list[ReplayEpisode],
    chunk_size: int | None = None,
    mode: str = "chunk",
    settle_s: float = 1.0,
    image_size: tuple[int, int] = (64, 48),
    progress: bool = True,
    workers: int = 0,
) -> list[ReplayRow]:
    """Replay every episode in its own scene, `settle_s` past its labels' end; success as sim-eval judges it (by the
    end state, the first-instant test beside it).
    `chunk_size` labels are handed to the executor per control period (default: the demo preset's chunk).
    Episodes run in `workers` processes (0: one per core)."""
    chunk_size = preset_chunk_size() if chunk_size is None else chunk_size
    return run_jobs(
        PandaTable,
        (image_size,),
        _replay_job,
        [(ep, chunk_size, mode, settle_s) for ep in episodes],
        workers,
        on_result=lambda done: f"success={sum(r.success for r in done)}/{len(done)} (end state)",
        desc="replay" if progress else None,
    )


def _replay_job(env: PandaTable, job: tuple[ReplayEpisode, int, str, float]) -> ReplayRow:
    ep, chunk_size, mode, settle_s = job
    labels = np.asarray(ep.action, np.float64)
    steps = len(labels) + int(settle_s * ep.rate_hz)
    padded = np.concatenate([labels, np.repeat(labels[-1:], steps - len(labels) + chunk_size, 0)])
    executor = sim_executor(ep.rate_hz, chunk_size, labels.shape[1], mode)
    r = run_episode(
        env,
        lambda step, image, q: padded[step : step + chunk_size],
        executor,
        ep.instruction,
        ep.seed,
        ep.rate_hz,
        steps,
        render=False,
        layout=ep.layout,
    )
    return ReplayRow(ep.name, ep.instruction, ep.seed, r.success, r.first_success is not None, r.steps, r.holds)


def replay_summary(rows: list[ReplayRow]) -> dict[str, Any]:
    tasks: dict[str, Any] = {}
    for task in sorted({r.instruction for r in rows}):
        rs = [r for r in rows if r.instruction == task]
        ok = sum(r.success for r in rs)
        tasks[task] = {
            "episodes": len(rs),
            "successes": ok,
            "ci95": wilson_interval(ok, len(rs)),
            "first_instant_successes": sum(r.first_instant for r in rs),
        }
    ok = sum(r.success for r in rows)
    return {
        "tasks": tasks,
        "episodes": len(rows),
        "successes": ok,
        "success_rate": ok / max(len(rows), 1),
        "first_instant_successes": sum(r.first_instant for r in rows),
    }


def replay_table(rows: list[ReplayRow]) -> str:
    s = replay_summary(rows)
    lines = ["| task | replay success (end state) | 95% CI | first instant |", "|---|---|---|---|"]
    for task, t in s["tasks"].items():
        lo, hi = t["ci95"]
        lines.append(
            f"| {task} | {t['successes']}/{t['episodes']} | {100 * lo:.0f}-{100 * hi:.0f}% | "
            f"{t['first_instant_successes']}/{t['episodes']} |"
        )
    lines.append(
        f"| all | {s['successes']}/{s['episodes']} ({100 * s['success_rate']:.0f}%) | | "
        f"{s['first_instant_successes']}/{s['episodes']} |"
    )
    failed = [f"{r.name} ({r.instruction}, seed {r.seed})" for r in rows if not r.success]
    if failed:
        lines.append("\nfailed: " + ", ".join(failed))
    return "\n".join(lines)
