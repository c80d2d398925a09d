"""`ccol sim-eval`: closed-loop rollouts of a checkpoint in the simulated world.

Each control period: render the camera, `CCoLPolicy.predict_chunk`, then the `ClosedLoopExecutor` that
`policy_node` uses (temporal ensembling on the control-period grid, rate limiting, holds), and the first target
is commanded; `ccol replay` runs recorded labels through the same loop.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccol_policy.bags import read_metadata
from ccol_policy.checkpoint import load_checkpoint
from ccol_policy.control import (
    SAFE_ACCELERATION_SCALE,
    SAFE_VELOCITY_SCALE,
    SAFE_WORKSPACE,
    ClosedLoopExecutor,
    control_rate_hz,
    gripper_command,
)
from ccol_policy.eval_bag import GRIPPER_CLOSED_M, has_csa_attention, noun_attention_shares, summarise_shares
from ccol_policy.jtc import JTCFollower, StartState
from ccol_policy.metrics import smoothness
from ccol_policy.policy import CCoLPolicy, resolve_device
from ccol_policy.robots import LIMITS
from ccol_sim.env import OBJECTS, TASK_OBJECT, TASKS, PandaTable
from ccol_sim.layouts import DEFAULT_LAYOUT, UNNAMED_LAYOUT
from ccol_sim.parallel import run_jobs
from ccol_sim.teacher import TCP_FLOOR_Z

log = logging.getLogger(__name__)
EVAL_SEED_OFFSET = 1_000_000  # evaluation scenes never coincide with demonstration scenes
EXECUTED_FILE = "executed.npz"


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class Rollout:
    task: str
    seed: int
    success: bool  # by the end state (`PandaTable.end_state_success`)
    first_success: int | None  # the control period the task's test first passed (None: never)
    steps: int
    holds: int
    executed: np.ndarray  # (T, 8) commanded joint targets
    closest: dict[str, float] = field(default_factory=dict)  # closest approach of the hand to each object (m)
    frames: list[np.ndarray] = field(default_factory=list)
    attention: list[tuple[str, str, float, float]] = field(default_factory=list)  # (noun, phase, share, area)
    raised: int = 0  # targets the executor's fingertip floor moved up
    peak_acceleration: np.ndarray = field(default_factory=lambda: np.zeros(7))  # followed trajectory, rad/s^2


ChunkSource = Callable[[int, np.ndarray | None, np.ndarray], np.ndarray]  # (period, image, qpos8) -> chunk (k, A)
PHYSICS_HZ = 500.0  # the controller model's update rate: joint_trajectory_controller sampled every 2 ms of sim time


def run_episode(
    env: PandaTable,
    chunks: ChunkSource,
    executor: ClosedLoopExecutor,
    task: str,
    seed: int,
    rate_hz: float,
    max_steps: int,
    record_video: bool = False,
    render: bool = True,
    layout: str = DEFAULT_LAYOUT,
    node_rate_hz: float | None = None,
    start_state: StartState = StartState.DESIRED,
    accelerations: list[np.ndarray] | None = None,
    latency_s: float = 0.0,
) -> Rollout:
    """One closed-loop episode through the path the robot gets: the camera renders at `rate_hz` (the training
    control rate, the D435i's 30 Hz), the node cycles at `node_rate_hz` (default: `rate_hz`; policy_node's is 67 Hz):
    each cycle asks `chunks` for a chunk (latest frame, measured joints now), steps `executor` and hands the command
    (or the hold's braking) to a `JTCFollower`, which the arm's servos follow, updated every 2 ms of sim time. The
    arm starts near the ready pose; the scene is `seed`'s in `layout`. Every episode runs `max_steps` control periods:
    success is the end state's (`PandaTable.end_state_success`), and the period the task's test first passed is
    kept beside it (the "first-instant" figure).
    `accelerations` collects the controller's desired joint acceleration (7,) of every update. `latency_s` models
    the node's inference and delivery time: a cycle's command, computed from the frame and joints at its start,
    reaches the controller that much later (policy_node stamps it with the time after inference)."""
    env.reset(seed, layout=layout)
    executor.reset()
    node_rate = node_rate_hz or rate_hz
    follower = JTCFollower(env.joints(), start_state)
    width = env.gripper_width()
    executed, frames, holds = [], [], 0
    closest = dict.fromkeys(OBJECTS, math.inf)
    first_success = None
    peak = np.zeros(7)
    inbox: list[tuple[float, Any, np.ndarray]] = []  # (delivery time, command, joints it was computed from)
    h = 1.0 / PHYSICS_HZ
    t, ticks, image, next_cycle, next_frame, period = 0.0, 0, None, 0.0, 0.0, 0
    while period < max_steps:
        if t >= next_frame - 1e-9:
            image = env.render() if render or record_video else None
            if record_video and period % 2 == 0:
                frames.append(image)
            next_frame += 1.0 / rate_hz
        if t >= next_cycle - 1e-9:
            q = env.qpos8()
            chunk = chunks(int(np.floor(t * rate_hz + 1e-9)), image, q)
            sent = t + latency_s
            command, reason = executor.step(sent, chunk, q)
            if reason is not None:
                holds += 1
                command = executor.stop(sent)
            if command is not None:
                inbox.append((sent, command, q))
            next_cycle += 1.0 / node_rate
        while inbox and inbox[0][0] <= t + 1e-9:
            sent, command, q = inbox.pop(0)
            follower.receive(command.time_from_start(sent), command.positions, command.velocities)
            if command.gripper is not None:
                width = gripper_command(command.gripper, float(q[7]))
        measured = (env.joints(), env.joint_velocities()) if follower.needs_measured() else None
        desired, _, accel = follower.update(t, measured)
        peak = np.maximum(peak, np.abs(accel))
        if accelerations is not None:
            accelerations.append(accel)
        env.command(desired, width)
        env.step(h)
        ticks += 1
        t = ticks * h
        if t >= (period + 1) / rate_hz - 1e-9:  # a control period has passed
            period += 1
            executed.append(np.append(desired, width))
            hand = env.ee_pos()
            for obj in OBJECTS:
                closest[obj] = min(closest[obj], float(np.linalg.norm(hand - env.body_pos(obj))))
            if first_success is None and env.success(task):
                first_success = period
    return Rollout(
        task,
        seed,
        env.end_state_success(task),
        first_success,
        max_steps,
        holds,
        np.array(executed),
        closest,
        frames,
        raised=executor.raised,
        peak_acceleration=peak,
    )


def sim_executor(
    rate_hz: float,
    chunk_size: int,
    action_dim: int,
    mode: str = "ensemble",
    ensemble_m: float = 0.01,
    tcp_floor_z: float | None = TCP_FLOOR_Z,
    full_limits: bool = False,
) -> ClosedLoopExecutor:
    """The executor of every simulated rollout (sim-eval, replay, the reference): policy_node's defaults on the
    simulated Panda (half its velocity and acceleration limits, the workspace box; `full_limits`: the datasheet's,
    no box) and the table's fingertip floor."""
    scale = 1.0 if full_limits else SAFE_VELOCITY_SCALE, 1.0 if full_limits else SAFE_ACCELERATION_SCALE
    return ClosedLoopExecutor(
        "panda",
        1.0 / rate_hz,
        chunk_size,
        action_dim,
        mode=mode,
        ensemble_m=ensemble_m,
        velocity_scale=scale[0],
        acceleration_scale=scale[1],
        workspace=None if full_limits else SAFE_WORKSPACE,
        tcp_floor_z=tcp_floor_z,
    )


def went_for_its_object(r: Rollout) -> bool:
    """Whether the object the hand came closest to is the one the instruction names (grasped first): a policy
    that ignores the words goes for whatever its scene suggests, whatever it is told."""
    return min(r.closest, key=r.closest.get) == TASK_OBJECT[r.task]


# The objects each noun of the simulated tasks names ("slide the cube" slides the red one).
NOUN_OBJECTS = {"pen": ("pen",), "cube": ("red_cube",), "cubes": ("red_cube", "blue_cube")}
PHASES = ("reach", "hold", "release")  # before the first gripper close, while closed, after reopening


class AttentionProbe:
    """Chunk source that also measures where each noun's CSA attention falls (paper Fig. 4a, as a figure):
    per control step, the share of the noun's attention over the image patches that lands on patches its
    object touches (the simulator's segmentation), beside that region's share of the grid (uniform attention)."""

    def __init__(self, env: PandaTable, policy: CCoLPolicy, close_below: float = GRIPPER_CLOSED_M) -> None:
        self.env, self.policy, self.close_below = env, policy, close_below
        self.records: list[tuple[str, str, float, float]] = []
        self.phase = 0

    def __call__(self, step: int, image: np.ndarray, q: np.ndarray) -> np.ndarray:
        chunk = self.policy.predict_chunk(image, q, need_attention=True)
        closed = chunk.shape[1] > 7 and chunk[0, 7] < self.close_below
        if self.phase == 0 and closed or self.phase == 1 and not closed:
            self.phase += 1
        for noun, (share, area) in noun_attention_shares(self.policy, noun_regions(self.env)).items():
            self.records.append((noun, PHASES[self.phase], share, area))
        return chunk


def noun_regions(env: PandaTable) -> dict[str, np.ndarray]:
    """{noun: (H, W) bool image region of the objects it names}, now."""
    masks = env.object_masks()
    return {noun: np.logical_or.reduce([masks[o] for o in objs]) for noun, objs in NOUN_OBJECTS.items()}


def rollout(
    env: PandaTable,
    policy: CCoLPolicy,
    task: str,
    seed: int,
    rate_hz: float,
    max_seconds: float,
    mode: str = "ensemble",
    ensemble_m: float = 0.01,
    record_video: bool = False,
    attention: bool = False,
    tcp_floor_z: float | None = TCP_FLOOR_Z,
    layout: str = DEFAULT_LAYOUT,
    node_rate_hz: float | None = None,
    full_limits: bool = False,
    latency_s: float = 0.0,
) -> Rollout:
    """A policy in closed loop on the scene of `seed` in `layout`; with `attention` (CSA policies) also the attention
    shares of `AttentionProbe`. `tcp_floor_z`: the executor's fingertip floor (the table's, as the robot's
    `table_z` gives it; None: off)."""
    policy.set_instruction(task)
    executor = sim_executor(
        rate_hz, policy.chunk_size, policy.cfg.model.action_dim, mode, ensemble_m, tcp_floor_z, full_limits
    )
    probe = AttentionProbe(env, policy) if attention and has_csa_attention(policy) else None
    r = run_episode(
        env,
        probe or (lambda step, image, q: policy.predict_chunk(image, q, frame_key=image)),
        executor,
        task,
        seed,
        rate_hz,
        int(max_seconds * rate_hz),
        record_video,
        layout=layout,
        node_rate_hz=node_rate_hz,
        latency_s=latency_s,
    )
    if probe is not None:
        r.attention = probe.records
    return r


def scene_regions(bag: Path, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """`eval_bag.Regions` for simulator bags: the scene of the bag's seed (episode.json) rendered at the bag's
    image size (H, W), each noun's objects as one region."""
    meta = read_metadata(bag)
    if "seed" not in meta:
        raise ValueError(f"{bag}: episode.json has no 'seed'; object regions exist for simulator bags only")
    env = PandaTable(render_size=(size[1], size[0]))
    try:
        env.reset(int(meta["seed"]), layout=str(meta.get("layout", UNNAMED_LAYOUT)))
        return noun_regions(env)
    finally:
        env.close()


def attention_summary(rollouts: list[Rollout]) -> list[dict[str, Any]]:
    """Mean attention share and region area per (noun, phase) over the steps of `rollouts`."""
    groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in rollouts:
        for noun, phase, share, area in r.attention:
            groups.setdefault((noun, phase), []).append((share, area))
    return [
        {"noun": noun, "phase": phase, **summarise_shares(v)}
        for (noun, phase), v in sorted(groups.items(), key=lambda kv: (kv[0][0], PHASES.index(kv[0][1])))
    ]


def attention_table(report: dict[str, Any]) -> str:
    lines = [
        "| task | noun | phase | steps | attention on its object | object's share of the image (uniform) |",
        "|---|---|---|---|---|---|",
    ]
    for task, s in report["tasks"].items():
        for row in s.get("attention", []):
            lines.append(
                f"| {task} | {row['noun']} | {row['phase']} | {row['steps']} | {100 * row['share']:.1f}% | "
                f"{100 * row['area']:.1f}% |"
            )
    return "\n".join(lines)


def save_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    import imageio.v2 as imageio

    imageio.mimsave(path, frames, duration=1.0 / fps, loop=0)


def sim_eval(
    checkpoint: str | Path,
    out_dir: str | Path,
    tasks: list[str] | None = None,
    episodes: int = 10,
    seed: int = 0,
    device: str = "cpu",
    max_seconds: float = 12.0,
    videos: int = 0,
    image_size: tuple[int, int] = (160, 120),
    progress: bool = True,
    name: str | None = None,
    workers: int = 0,
    attention: bool = False,
    tcp_floor: bool = True,
    layout: str = DEFAULT_LAYOUT,
    node_rate_hz: float | None = None,
    full_limits: bool = False,
    latency_s: float = 0.0,
) -> dict[str, Any]:
    """Success rate (with a 95% Wilson interval) and smoothness per task; writes report.json/.md and a plot.
    Episodes run in `workers` processes (0: one per core on CPU, one on a GPU). With `attention`, also where
    each noun's CSA attention falls, per phase (`AttentionProbe`). `tcp_floor`: the executor keeps the fingertips
    above the table (`teacher.TCP_FLOOR_Z`), as policy_node does by default (`fingertip_floor`). `layout`: the scene
    layout of the held-out scenes (`ccol_sim.layouts.LAYOUTS`), the one the demonstrations were recorded in."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = load_checkpoint(checkpoint)  # in this process first: a bad checkpoint fails here, clearly
    rate = control_rate_hz(ckpt.meta)
    tasks = tasks or [t for t in TASKS if t in ckpt.instructions] or list(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"the simulator has no success test for {unknown}; tasks: {list(TASKS)}")
    jobs = [
        _EvalJob(
            t,
            seed + EVAL_SEED_OFFSET + i,
            rate,
            max_seconds,
            i < videos,
            attention,
            tcp_floor,
            layout,
            node_rate_hz=node_rate_hz,
            full_limits=full_limits,
            latency_s=latency_s,
        )
        for t in tasks
        for i in range(episodes)
    ]
    if resolve_device(device).type != "cpu":
        workers = 1  # one GPU context, batch-1 inference is fast enough
    rollouts = run_jobs(
        EvalWorker,
        (str(checkpoint), device, image_size),
        _eval_job,
        jobs,
        workers,
        on_result=lambda done: f"success={sum(r.success for r in done)}/{len(done)} (end state)",
        desc=f"sim-eval {name or Path(checkpoint).parent.name}" if progress else None,
    )
    results: dict[str, list[Rollout]] = {t: [] for t in tasks}
    for r in rollouts:
        results[r.task].append(r)
        if r.frames:
            save_gif(r.frames, out / f"{r.task.replace(' ', '_')}_{r.seed}.gif", rate / 2)
    summary = summarise(results)
    if attention:
        for task, rs in results.items():
            summary[task]["attention"] = attention_summary(rs)
    report = {
        "checkpoint": str(checkpoint),
        "control_rate_hz": rate,
        "seed": seed,
        "episodes": episodes,
        "max_seconds": max_seconds,
        "layout": layout,
        "node_rate_hz": node_rate_hz or rate,
        "latency_s": latency_s,
        "limits": "full (datasheet, no box)"
        if full_limits
        else "policy_node's defaults (0.5 x velocity, acceleration; box)",
        "tcp_floor_z": TCP_FLOOR_Z if tcp_floor else None,
        "tasks": summary,
    }
    # the commanded joint targets of every episode, "task|scene seed" -> (T, 8), for smoothness plots
    np.savez_compressed(out / EXECUTED_FILE, **{f"{r.task}|{r.seed}": r.executed for r in rollouts})
    (out / "sim_eval.json").write_text(json.dumps(report, indent=1))
    md = f"# sim-eval of {checkpoint}\n\n{table({name or 'policy': report})}\n"
    if any(s.get("attention") for s in summary.values()):
        md += f"\n## Where each noun's CSA attention falls (last block)\n\n{attention_table(report)}\n"
    (out / "sim_eval.md").write_text(md)
    return report


def summarise(results: dict[str, list[Rollout]]) -> dict[str, dict[str, Any]]:
    """Per task: success by the end state with its 95% interval, the first-instant count beside it (and the mean
    period it came at), holds, floor raises, whether the hand went for the named object, and the smoothness of the
    executed joint targets."""
    summary = {}
    for task, rs in results.items():
        n_ok = sum(r.success for r in rs)
        reached = [r.first_success for r in rs if r.first_success is not None]
        smooth = [smoothness(r.executed[:, :7]) for r in rs if len(r.executed) >= 3]
        summary[task] = {
            "episodes": len(rs),
            "successes": n_ok,
            "success_rate": n_ok / len(rs),
            "ci95": wilson_interval(n_ok, len(rs)),
            "first_instant_successes": len(reached),
            "mean_first_success_step": float(np.mean(reached)) if reached else None,
            "mean_steps": float(np.mean([r.steps for r in rs])),
            "holds": int(sum(r.holds for r in rs)),
            "raised_to_floor": int(sum(r.raised for r in rs)),
            # the followed trajectories' largest desired |acceleration| over the arm's limit, worst joint
            "peak_acceleration_over_limit": float(
                (np.max([r.peak_acceleration for r in rs], axis=0) / LIMITS["panda"].acceleration).max()
            ),
            "went_for_its_object": sum(went_for_its_object(r) for r in rs),
            **{
                k: float(np.mean([s[k] for s in smooth]))
                for k in ("velocity_fluctuation", "acceleration_fluctuation", "min_acceleration")
            },
        }
    return summary


@dataclass(frozen=True)
class _EvalJob:
    task: str
    seed: int
    rate_hz: float
    max_seconds: float
    video: bool
    attention: bool = False
    tcp_floor: bool = True
    layout: str = DEFAULT_LAYOUT
    node_rate_hz: float | None = None
    full_limits: bool = False
    latency_s: float = 0.0


class EvalWorker:
    """A simulator process's policy and scene, built once (`parallel.run_jobs`' worker for sim-eval)."""

    def __init__(self, checkpoint: str, device: str, image_size: tuple[int, int]) -> None:
        self.policy = CCoLPolicy.from_checkpoint(checkpoint, device=device)
        self.threads = torch.get_num_threads()  # restored on close (a worker may be this very process)
        if self.policy.device.type == "cpu":
            torch.set_num_threads(1)  # batch-1 inference: one thread per worker beats two (no thread hand-offs)
        self.env = PandaTable(render_size=image_size)

    def close(self) -> None:
        self.env.close()
        torch.set_num_threads(self.threads)


def _eval_job(worker: EvalWorker, job: _EvalJob) -> Rollout:
    return rollout(
        worker.env,
        worker.policy,
        job.task,
        job.seed,
        job.rate_hz,
        job.max_seconds,
        record_video=job.video,
        attention=job.attention,
        tcp_floor_z=TCP_FLOOR_Z if job.tcp_floor else None,
        layout=job.layout,
        node_rate_hz=job.node_rate_hz,
        full_limits=job.full_limits,
        latency_s=job.latency_s,
    )


def table(reports: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| policy | task | success (end state) | 95% CI | first instant | went for its object | vel. fluct. "
        "| acc. fluct. | min acc. | peak desired acc. / limit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rep in reports.items():
        for task, s in rep["tasks"].items():
            lo, hi = s["ci95"]
            went = f"{s['went_for_its_object']}/{s['episodes']}" if "went_for_its_object" in s else "-"
            peak = f"{s['peak_acceleration_over_limit']:.2f}" if "peak_acceleration_over_limit" in s else "-"
            first = f"{s['first_instant_successes']}/{s['episodes']}" if "first_instant_successes" in s else "-"
            lines.append(
                f"| {name} | {task} | {s['successes']}/{s['episodes']} ({100 * s['success_rate']:.0f}%) | "
                f"{100 * lo:.0f}-{100 * hi:.0f}% | {first} | {went} | {s['velocity_fluctuation']:.4f} | "
                f"{s['acceleration_fluctuation']:.4f} | {s['min_acceleration']:.4f} | {peak} |"
            )
    return "\n".join(lines)


def plot_success(reports: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    tasks = list(next(iter(reports.values()))["tasks"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        s = [reports[name]["tasks"][t] for t in tasks]
        rate = np.array([x["success_rate"] for x in s])
        lo = rate - np.array([x["ci95"][0] for x in s])
        hi = np.array([x["ci95"][1] for x in s]) - rate
        ax.bar(
            np.arange(len(tasks)) + i * width, 100 * rate, width, yerr=100 * np.stack([lo, hi]), capsize=3, label=name
        )
    ax.set_xticks(np.arange(len(tasks)) + width * (len(names) - 1) / 2, tasks)
    ax.set_ylabel("success (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    ax.set_title("closed-loop success in simulation (95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
