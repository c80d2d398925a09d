"""The README's main job (`ccol demo`): scripted demonstrations in the simulator -> episode bags ->
`build-dataset` -> `train` (small preset) -> closed-loop `sim-eval`, with a table and a plot.

Every stage keeps its output, so a second run skips finished stages and resumes an interrupted training.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ccol_policy.bags import BagTopics, SyncConfig
from ccol_policy.config import ABLATIONS, load_config, resolve_preset
from ccol_policy.dataset_builder import build_dataset, summary_table
from ccol_policy.training import train
from ccol_sim.layouts import DEFAULT_LAYOUT
from ccol_sim.recording import record_demonstrations
from ccol_sim.reference import ReferenceConfig, run_reference
from ccol_sim.replay import load_replay_episodes, replay_in_sim, replay_summary, replay_table
from ccol_sim.sim_eval import plot_success, sim_eval, table

log = logging.getLogger(__name__)

REFERENCE = "reference (sim state)"


def run_sim_demo(
    out: Path,
    episodes_per_task: int,
    approach_error: float = 0.0,
    eval_episodes: int = 20,
    steps: int | None = None,
    compare: tuple[str, ...] = (),
    image_size: int | None = None,
    seed: int = 0,
    control_rate_hz: float = 30.0,
    max_seconds: float | None = None,
    layout: str = DEFAULT_LAYOUT,
    reference_steps: int = ReferenceConfig.steps,
    seeds: int = 1,
    teacher: str = "scripted",
) -> dict[str, Any]:
    """`image_size`: the dataset's square frames, by default what the preset's vision encoder takes; `layout`: the
    scene layout of demonstrations and held-out scenes (`ccol_sim.layouts.LAYOUTS`); `seeds`: training seeds per
    model (seed 0 in train_<model>, seed s in train_<model>_seed<s>), each evaluated on the same held-out scenes;
    `compare`: the ablation variants trained and evaluated beside CCoL (`ccol_policy.config.ABLATIONS`: "act" the
    ACT-style baseline, "wo_mcc" CCoL without MCC...); `teacher`: who demonstrates (`ccol_sim.teacher.TEACHERS`);
    `max_seconds`: the held-out episodes' length, by default 12 s or 2 s longer than the longest demonstration:
    the policy must also hold a finished task."""
    t_start = time.perf_counter()
    unknown = [v for v in compare if v not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown} to compare; choose from {list(ABLATIONS)}")
    image_size = image_size or load_config(resolve_preset("small_cpu")).vision.image_size
    out.mkdir(parents=True, exist_ok=True)
    bags, dataset = out / "bags", out / "dataset"
    marker = bags / ".complete"
    if not marker.is_file():
        if bags.exists():
            import shutil

            shutil.rmtree(bags)
        log.info("stage 1/4: recording %d %s demonstrations per task in the simulator", episodes_per_task, teacher)
        rows = record_demonstrations(
            bags,
            episodes_per_task,
            seed=seed,
            approach_error=approach_error,
            layout=layout,
            teacher=teacher,
        )
        ok = sum(r.success for r in rows)
        log.info(
            "%s teacher succeeded in %d/%d demonstrations by the end state (failed ones are kept, marked so)",
            teacher,
            ok,
            len(rows),
        )
        marker.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    if not (dataset / ".complete").is_file():
        log.info("stage 2/4: build-dataset (%g Hz grid, %dx%d images)", control_rate_hz, image_size, image_size)
        cfg = SyncConfig(control_rate_hz=control_rate_hz, image_width=image_size, image_height=image_size)
        rows = build_dataset([bags], dataset, BagTopics(arm_id="panda"), cfg)
        log.info("build-dataset summary:\n%s", summary_table(rows))
        (dataset / ".complete").write_text("ok\n")
    replay_file = dataset / "replay.json"
    if not replay_file.is_file():
        log.info("checking the labels: replaying the dataset's actions open loop in their scenes")
        replay_rows = replay_in_sim(load_replay_episodes([dataset]))
        replay_file.write_text(json.dumps(replay_summary(replay_rows), indent=1))
        log.info("replay of the dataset's labels:\n%s", replay_table(replay_rows))
    replay = json.loads(replay_file.read_text())
    demos = json.loads(marker.read_text())
    teacher_ok = f"{sum(r['success'] for r in demos)}/{len(demos)} by the end state"
    if max_seconds is None:
        max_seconds = max(12.0, float(np.ceil(max(r.get("seconds", 0.0) for r in demos))) + 2.0)
        log.info("held-out episodes run %.0f s (the longest demonstration and 2 s more, at least 12)", max_seconds)
    log.info("the privileged-state reference (simulator layout, not deployable): is this data enough at all?")
    reference = run_reference(
        dataset, out / "reference", eval_episodes, seed, layout, ReferenceConfig(steps=reference_steps), max_seconds
    )
    variants = {"ccol": None, **{v: v for v in compare}}
    reports = {}
    for model, ablation in variants.items():
        for s in range(seeds):
            name = model if seeds == 1 else f"{model} seed {s}"
            folder = model if s == 0 else f"{model}_seed{s}"
            reports[name] = _train_and_evaluate(
                out, folder, name, dataset, ablation, s, steps, eval_episodes, seed, max_seconds, layout
            )
    shown = {**reports, REFERENCE: reference}
    plot_success(shown, out / "success.png")
    text = (
        f"Scene layout `{layout}`; {episodes_per_task} {teacher} demonstrations per task (the teacher solved "
        f"{teacher_ok}); {eval_episodes} held-out scenes per "
        f"task; success by the end state (the pen still up; the red cube resting in the zone or on blue, the hand "
        f"open and off it), the first-instant count beside it.\n\n{table(shown)}\n\n`{REFERENCE}` is given the "
        "simulator's true object positions, which no deployed policy gets: it shows what this many demonstrations "
        "allow, not a policy."
        + f"\n\nThe dataset's own labels replayed open loop (`ccol replay`): {replay['successes']}/"
        f"{replay['episodes']} ({100 * replay['success_rate']:.0f}%) by the end state, "
        f"{replay.get('first_instant_successes', '-')}/{replay['episodes']} at the first instant: the ceiling of a "
        "perfect imitator."
        + "\nOpen loop, held-out demonstration episodes (action L1, rad): "
        + ", ".join(f"{n} {r['held_out_action_l1']:.4f}" for n, r in reports.items())
    )
    starts = [f"{n} {r['held_out_start_l1']:.4f}" for n, r in reports.items() if r["held_out_start_l1"] is not None]
    if starts:
        text += "; over each episode's first k steps (the reach, where the scene and the words decide): " + ", ".join(
            starts
        )
    if seeds > 1:
        text += f"\n\n## Training seeds\n\n{seeds_table(reports)}"
    minutes = (time.perf_counter() - t_start) / 60
    (out / "report.md").write_text(
        f"# CCoL simulation demo\n\n{text}\n\n![success](success.png)\n\nWall time {minutes:.1f} min.\n"
    )
    (out / "report.json").write_text(
        json.dumps({"layout": layout, "reports": reports, "reference": reference, "wall_time_min": minutes}, indent=1)
    )
    log.info(
        "closed-loop results:\n%s\nplot: %s; report: %s (%.1f min)",
        text,
        out / "success.png",
        out / "report.md",
        minutes,
    )
    return reports


def _train_and_evaluate(
    out: Path,
    folder: str,
    name: str,
    dataset: Path,
    ablation: str | None,
    train_seed: int,
    steps: int | None,
    eval_episodes: int,
    seed: int,
    max_seconds: float,
    layout: str,
) -> dict[str, Any]:
    """Train (or resume) one model with one training seed on the small preset, then sim-eval it."""
    overrides: dict[str, Any] = {"train.seed": train_seed, **({"train.steps": steps} if steps else {})}
    cfg = load_config(resolve_preset("small_cpu"), overrides=overrides, ablation=ablation)
    run = out / f"train_{folder}"
    log.info("stage 3/4: training %s (%d steps, small_cpu preset, seed %d)", name, cfg.train.steps, train_seed)
    result = train(cfg, [dataset], run, device="cpu", resume=(run / "latest" / "train_state.pt").is_file())
    evaluated = out / f"eval_{folder}" / "sim_eval.json"
    report = json.loads(evaluated.read_text()) if evaluated.is_file() else {}
    same = {"episodes": eval_episodes, "max_seconds": max_seconds, "layout": layout, "seed": seed}
    fresh = evaluated.is_file() and evaluated.stat().st_mtime > (run / "best" / "meta.json").stat().st_mtime
    if fresh and all(report.get(k) == v for k, v in same.items()):
        log.info("stage 4/4: %s was evaluated on these scenes already (%s)", name, evaluated)
    else:
        log.info("stage 4/4: closed-loop evaluation of %s, %d episodes per task", name, eval_episodes)
        report = sim_eval(
            run / "best",
            out / f"eval_{folder}",
            episodes=eval_episodes,
            seed=seed,
            videos=1,
            name=name,
            max_seconds=max_seconds,
            layout=layout,
        )
    report["held_out_action_l1"] = result.best_val_l1
    best = json.loads((run / "best" / "meta.json").read_text()).get("validation") or {}
    report["held_out_start_l1"] = best.get("val_l1_start")
    report["train_seed"] = train_seed
    return report


def seeds_table(reports: dict[str, dict[str, Any]]) -> str:
    """Each seed's end-state success per task and mean (first instant beside), then each model's mean over its
    seeds with the standard deviation and range: what a ranking of models can and cannot rest on."""
    tasks = list(next(iter(reports.values()))["tasks"])
    lines = [
        "| model | seed | " + " | ".join(tasks) + " | mean, end state | mean, first instant | held-out L1 |",
        "|---|---|" + "---|" * (len(tasks) + 3),
    ]
    by_model: dict[str, list[tuple[float, float]]] = {}
    for name, r in reports.items():
        s = r["tasks"]
        end = float(np.mean([s[t]["success_rate"] for t in tasks]))
        first = float(np.mean([s[t]["first_instant_successes"] / s[t]["episodes"] for t in tasks]))
        model = name.split(" seed ")[0]
        by_model.setdefault(model, []).append((end, first))
        cells = " | ".join(f"{s[t]['successes']}/{s[t]['episodes']}" for t in tasks)
        lines.append(
            f"| {model} | {r.get('train_seed', 0)} | {cells} | {100 * end:.0f}% | {100 * first:.0f}% | "
            f"{r['held_out_action_l1']:.4f} |"
        )
    lines += [
        "",
        "| model | seeds | mean, end state | std | range | mean, first instant |",
        "|---|---|---|---|---|---|",
    ]
    for model, v in by_model.items():
        end, first = np.array(v).T
        spread = 100 * end.std(ddof=1) if len(v) > 1 else 0.0
        lines.append(
            f"| {model} | {len(v)} | {100 * end.mean():.1f}% | {spread:.1f} | "
            f"{100 * end.min():.0f}-{100 * end.max():.0f}% | {100 * first.mean():.1f}% |"
        )
    return "\n".join(lines)
