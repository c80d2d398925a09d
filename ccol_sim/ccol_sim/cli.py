"""The simulator's `ccol` verbs (demo, sim-eval, ablate, sim-record) and its parts of `replay`, `build-dataset`
and `eval-bag`, registered through the `ccol.commands` entry point that setup.py declares; `ccol_policy`'s CLI
finds it there and never imports this package."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ccol_sim.layouts import DEFAULT_LAYOUT, LAYOUTS, TEACHERS

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("ccol")

APPROACH_HELP = "the teacher aims its first approach this far off (cm, std per axis) and corrects above the object"
TEACHER_HELP = (
    "who demonstrates: 'scripted' (one speed profile, one grasp) or 'human' (per episode its own pace, pauses, "
    "overshoots corrected, varied grasps, a hand-guided arm's tremor)"
)
LAYOUT_HELP = "scene layout: 'paper' (every object at its usual place +-3 cm, as the paper's real robot) or 'wide'"
# on the paper layout, 100 scenes per task put CCoL at 30/60 by the end state (40/60 at the first instant) and the
# privileged-state reference at 37/60 (docs/learning_curve.md); recording them costs ~5 of the demo's minutes
DEMO_EPISODES_PER_TASK = 100


def cmd_demo(args: argparse.Namespace) -> int:
    from ccol_sim.pipeline import run_sim_demo

    run_sim_demo(
        Path(args.out),
        episodes_per_task=args.episodes_per_task,
        approach_error=args.approach_error_cm / 100,
        eval_episodes=args.eval_episodes,
        steps=args.steps,
        compare=tuple(dict.fromkeys((["act"] if args.compare_act else []) + (args.compare or []))),
        seed=args.seed,
        layout=args.layout,
        seeds=args.seeds,
        teacher=args.teacher,
        max_seconds=args.max_seconds,
    )
    return 0


def cmd_sim_eval(args: argparse.Namespace) -> int:
    from ccol_sim.sim_eval import plot_success, sim_eval, table

    common = {
        "tasks": args.instruction or None,
        "episodes": args.episodes,
        "seed": args.seed,
        "device": args.device,
        "max_seconds": args.max_seconds,
        "layout": args.layout,
        "node_rate_hz": args.node_rate,
        "progress": not args.no_progress,
    }
    if args.through_ros:
        from ccol_sim.through_ros import through_ros

        through_ros(args.checkpoint, args.out, jtc_start_state=args.jtc_start_state, **common)
        log.info("through ROS: %s", (Path(args.out) / "through_ros.md").read_text())
        return 0
    report = sim_eval(
        args.checkpoint,
        args.out,
        videos=args.videos,
        workers=args.workers,
        attention=args.attention,
        tcp_floor=not args.no_tcp_floor,
        full_limits=args.full_limits,
        latency_s=args.latency_ms / 1000,
        **common,
    )
    plot_success({"policy": report}, Path(args.out) / "success.png")
    log.info("closed-loop results:\n%s\nreport: %s", table({"policy": report}), Path(args.out) / "sim_eval.md")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ccol_sim.ablate import BUDGETS, run_ablation

    budget = BUDGETS[args.budget]
    for key in ("steps", "episodes", "seeds", "device"):
        if getattr(args, key) is not None:
            budget = replace(budget, **{key: getattr(args, key)})
    run_ablation(
        args.data,
        args.out,
        budget,
        variants=args.variants.split(",") if args.variants else None,
        config=args.config,
        workers=args.workers,
        progress=not args.no_progress,
    )
    log.info("table: %s, figure: %s", Path(args.out) / "ablation.md", Path(args.out) / "fig3_shoulder.png")
    return 0


def cmd_sim_record(args: argparse.Namespace) -> int:
    from ccol_sim.recording import record_demonstrations

    rows = record_demonstrations(
        args.out,
        args.episodes_per_task,
        seed=args.seed,
        progress=not args.no_progress,
        workers=args.workers,
        approach_error=args.approach_error_cm / 100,
        layout=args.layout,
        teacher=args.teacher,
    )
    log.info(
        "recorded %d demonstrations (%d successful) as bags in %s", len(rows), sum(r.success for r in rows), args.out
    )
    return 0


def replay(args: argparse.Namespace) -> int:
    """`ccol replay` without --robot: the recorded labels open loop in their scenes."""
    from ccol_sim.replay import load_replay_episodes, replay_in_sim, replay_summary, replay_table

    episodes = load_replay_episodes(args.episodes, rate_hz=args.rate, arm_id=args.arm_id or "panda")
    rows = replay_in_sim(
        episodes, chunk_size=args.chunk, mode=args.execution_mode, progress=not args.no_progress, workers=args.workers
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps({**replay_summary(rows), "episodes_detail": [r.__dict__ for r in rows]}, indent=1)
        )
    log.info("open-loop replay of the recorded labels in their scenes:\n%s", replay_table(rows))
    return 0


def _sim_episode(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        return bool(f.attrs.get("sim", False)) and "seed" in f.attrs


def check_built_episodes(paths: list[Path], progress: bool) -> None:
    """After `ccol build-dataset`: simulator episodes' labels replayed in their scenes (ccol replay)."""
    if not (paths and all(_sim_episode(p) for p in paths)):
        return
    from ccol_sim.replay import load_replay_episodes, replay_in_sim, replay_table

    rows = replay_in_sim(load_replay_episodes(paths), progress=progress)
    log.info("replay of the new episodes' labels in their scenes (ccol replay):\n%s", replay_table(rows))


def scene_regions(bag: Path, size: tuple[int, int]) -> dict[str, np.ndarray]:
    """`eval-bag --sim-scene`: ccol_sim.sim_eval.scene_regions, imported when first used."""
    from ccol_sim.sim_eval import scene_regions as regions

    return regions(bag, size)


def register(sub: argparse._SubParsersAction) -> None:
    """The `ccol.commands` entry point: adds the simulator verbs and fills the simulator hooks of the built-in
    verbs (ccol_policy.cli: `replay` in the simulator, `build-dataset`'s replay check, `eval-bag --sim-scene`)."""
    sub.choices["replay"].set_defaults(replay_in_sim=replay)
    sub.choices["build-dataset"].set_defaults(check_episodes=check_built_episodes)
    sub.choices["eval-bag"].set_defaults(scene_regions=scene_regions)

    p = sub.add_parser(
        "demo",
        help="the embedded default job in the simulator: scripted demonstrations -> bags -> "
        "dataset -> training -> closed-loop evaluation",
    )
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the small_cpu preset's)")
    p.add_argument(
        "--episodes-per-task", type=int, default=DEMO_EPISODES_PER_TASK, help="scripted demonstrations per task"
    )
    p.add_argument("--approach-error-cm", type=float, default=0.0, help=APPROACH_HELP)
    p.add_argument("--layout", choices=sorted(LAYOUTS), default=DEFAULT_LAYOUT, help=LAYOUT_HELP)
    p.add_argument("--eval-episodes", type=int, default=20, help="closed-loop episodes per task")
    p.add_argument("--compare-act", action="store_true", help="also train and evaluate the ACT-style baseline")
    p.add_argument(
        "--compare",
        type=lambda s: [v for v in s.split(",") if v],
        default=None,
        help="ablation variants to train and evaluate beside CCoL, comma-separated (e.g. act,wo_mcc)",
    )
    p.add_argument("--seed", type=int, default=0, help="scene seed of demonstrations and held-out scenes")
    p.add_argument(
        "--seeds", type=int, default=1, help="training seeds per model (0..N-1), each evaluated; report: spread"
    )
    p.add_argument("--teacher", choices=TEACHERS, default="scripted", help=TEACHER_HELP)
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="held-out episode length (default: 12 s, or 2 s longer than the longest demonstration)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sim-eval", help="closed-loop rollouts of a checkpoint in the simulator")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--instruction", action="append", default=[], help="task(s) to run (default: all it was trained on)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/sim_eval")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-seconds", type=float, default=12.0)
    p.add_argument("--videos", type=int, default=0, help="GIFs of the first N episodes per task")
    p.add_argument(
        "--layout", choices=sorted(LAYOUTS), default=DEFAULT_LAYOUT, help=LAYOUT_HELP + " (the demonstrations')"
    )
    p.add_argument("--workers", type=int, default=0, help="simulator processes (default: one per core)")
    p.add_argument("--attention", action="store_true", help="measure where each noun's CSA attention falls (per phase)")
    p.add_argument(
        "--no-tcp-floor", action="store_true", help="let targets put the fingertips into the table (no table_z floor)"
    )
    p.add_argument(
        "--node-rate",
        type=float,
        default=None,
        help="policy cycles per second of sim time, each streaming to the simulated joint_trajectory_controller "
        "(default: the checkpoint's control rate; policy_node runs at 67)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="a cycle's command reaches the controller this long after its frame and joints were read (inference "
        "and delivery; the through-ROS report gives the node's)",
    )
    p.add_argument(
        "--through-ros",
        action="store_true",
        help="run policy_node (its own process, its default rate) against sim_node over DDS on the same scenes; "
        "beside OUT/sim_eval.json when there is one",
    )
    p.add_argument(
        "--jtc-start-state",
        default="desired",
        choices=["desired", "measured", "last_commanded"],
        help="with --through-ros: where the simulated joint_trajectory_controller starts each message (Jazzy with "
        "interpolate_from_desired_state: desired; Humble: measured)",
    )
    p.add_argument(
        "--full-limits",
        action="store_true",
        help="the Panda's datasheet velocity and acceleration limits and no workspace box (default: policy_node's "
        "defaults, half the limits and the box)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_sim_eval)

    p = sub.add_parser("ablate", help="paper Table 4 in the simulator: train + sim-eval every variant")
    p.add_argument("data", nargs="+", help="dataset directories of *.hdf5 episodes (e.g. runs/demo/dataset)")
    p.add_argument("--out", default="runs/ablate")
    p.add_argument("--budget", choices=["cpu", "gpu"], default="cpu", help="steps/episodes/seeds preset")
    p.add_argument("--variants", default=None, help="comma-separated (default: all Table 4 variants)")
    p.add_argument("--config", default="small_cpu", help="preset every variant starts from")
    p.add_argument("--steps", type=int, default=None, help="override the budget's training steps")
    p.add_argument("--episodes", type=int, default=None, help="override the budget's episodes per task")
    p.add_argument("--seeds", type=int, default=None, help="override the budget's number of seeds")
    p.add_argument("--device", default=None, help="override the budget's device")
    p.add_argument("--workers", type=int, default=0, help="simulator processes (default: one per core)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("sim-record", help="scripted demonstrations in the simulator, written as episode bags")
    p.add_argument("--out", required=True)
    p.add_argument("--episodes-per-task", type=int, default=20)
    p.add_argument("--approach-error-cm", type=float, default=0.0, help=APPROACH_HELP)
    p.add_argument("--layout", choices=sorted(LAYOUTS), default=DEFAULT_LAYOUT, help=LAYOUT_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher", choices=TEACHERS, default="scripted", help=TEACHER_HELP)
    p.add_argument("--workers", type=int, default=0, help="simulator processes (default: one per core)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_sim_record)
