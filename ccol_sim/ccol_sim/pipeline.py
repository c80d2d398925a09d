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

from ccol_policy.bags import BagTopics, SyncConfig
from ccol_policy.config import load_config, resolve_preset
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
    compare_act: bool = False,
    image_size: int | None = None,
    seed: int = 0,
    control_rate_hz: float = 30.0,
    max_seconds: float = 12.0,
    layout: str = DEFAULT_LAYOUT,
    reference_steps: int = ReferenceConfig.steps,
) -> dict[str, Any]:
    """`image_size`: the dataset's square frames, by default what the preset's vision encoder takes; `layout`: the
    scene layout of demonstrations and held-out scenes (`ccol_sim.layouts.LAYOUTS`)."""
    t_start = time.perf_counter()
    image_size = image_size or load_config(resolve_preset("small_cpu")).vision.image_size
    out.mkdir(parents=True, exist_ok=True)
    bags, dataset = out / "bags", out / "dataset"
    marker = bags / ".complete"
    if not marker.is_file():
        if bags.exists():
            import shutil

            shutil.rmtree(bags)
        log.info("stage 1/4: recording %d scripted demonstrations per task in the simulator", episodes_per_task)
        rows = record_demonstrations(
            bags,
            episodes_per_task,
            seed=seed,
            approach_error=approach_error,
            layout=layout,
        )
        ok = sum(r.success for r in rows)
        log.info(
            "scripted teacher succeeded in %d/%d demonstrations (failed ones are kept, marked unsuccessful)",
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
    log.info("the privileged-state reference (simulator layout, not deployable): is this data enough at all?")
    reference = run_reference(
        dataset, out / "reference", eval_episodes, seed, layout, ReferenceConfig(steps=reference_steps), max_seconds
    )
    variants = {"ccol": None, **({"act": "act"} if compare_act else {})}
    reports = {}
    for name, ablation in variants.items():
        overrides = {"train.steps": steps} if steps else {}
        cfg = load_config(resolve_preset("small_cpu"), overrides=overrides, ablation=ablation)
        run = out / f"train_{name}"
        log.info("stage 3/4: training %s (%d steps, small_cpu preset)", name, cfg.train.steps)
        result = train(cfg, [dataset], run, device="cpu", resume=(run / "latest" / "train_state.pt").is_file())
        log.info("stage 4/4: closed-loop evaluation of %s, %d episodes per task", name, eval_episodes)
        reports[name] = sim_eval(
            run / "best",
            out / f"eval_{name}",
            episodes=eval_episodes,
            seed=seed,
            videos=1,
            name=name,
            max_seconds=max_seconds,
            layout=layout,
        )
        reports[name]["held_out_action_l1"] = result.best_val_l1
        best = json.loads((run / "best" / "meta.json").read_text()).get("validation") or {}
        reports[name]["held_out_start_l1"] = best.get("val_l1_start")
    shown = {**reports, REFERENCE: reference}
    plot_success(shown, out / "success.png")
    text = (
        f"Scene layout `{layout}`; {episodes_per_task} demonstrations per task; {eval_episodes} held-out scenes per "
        f"task.\n\n{table(shown)}\n\n`{REFERENCE}` is given the simulator's true object positions, which no "
        "deployed policy gets: it shows what this many demonstrations allow, not a policy."
        + f"\n\nThe dataset's own labels replayed open loop (`ccol replay`): {replay['successes']}/"
        f"{replay['episodes']} ({100 * replay['success_rate']:.0f}%), the ceiling of a perfect imitator."
        + "\nOpen loop, held-out demonstration episodes (action L1, rad): "
        + ", ".join(f"{n} {r['held_out_action_l1']:.4f}" for n, r in reports.items())
    )
    starts = [f"{n} {r['held_out_start_l1']:.4f}" for n, r in reports.items() if r["held_out_start_l1"] is not None]
    if starts:
        text += "; over each episode's first k steps (the reach, where the scene and the words decide): " + ", ".join(
            starts
        )
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
