"""`ccol ablate`: the paper's Table 4 in the simulator, with the Fig. 3 view and the smoothness figures.

Every variant trains on the same episodes with the same preset, steps and seeds, then runs the same held-out
scenes through `sim_eval` (the closed-loop path of `policy_node`). Re-running continues: finished trainings
resume to nothing and finished evaluations are read back from their reports.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ccol_policy.config import ABLATIONS, load_config, resolve_preset
from ccol_policy.training import train
from ccol_sim.sim_eval import EXECUTED_FILE, sim_eval, wilson_interval

log = logging.getLogger(__name__)

SMOOTHNESS = ("velocity_fluctuation", "acceleration_fluctuation", "min_acceleration")
SHOULDER = 1  # Panda/FR3 joint 2, the shoulder pitch (paper Fig. 3: "the shoulder joint")


@dataclass(frozen=True)
class AblationBudget:
    """How much each variant gets: training steps, evaluation episodes per task, seeds, device."""

    steps: int
    episodes: int
    seeds: int
    device: str


BUDGETS = {
    # end to end on 2 CPU cores in about 15 minutes: a smoke run, too short for the variants to differ
    "cpu": AblationBudget(steps=300, episodes=3, seeds=1, device="cpu"),
    # a lent GPU: the small_cpu network trained 15x longer, 3 seeds, 50 scenes per task and seed
    "gpu": AblationBudget(steps=60_000, episodes=50, seeds=3, device="cuda"),
}


def run_ablation(
    data: list[str | Path],
    out: str | Path,
    budget: AblationBudget,
    variants: list[str] | None = None,
    config: str = "small_cpu",
    workers: int = 0,
    progress: bool = True,
    max_seconds: float = 12.0,
) -> dict[str, Any]:
    """Train and evaluate each variant for each seed; write ablation.md/.json, fig3_shoulder.png.
    `config` is a preset name or YAML file; `max_seconds` bounds each evaluation episode."""
    out = Path(out)
    variants = variants or list(ABLATIONS)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(ABLATIONS)}")
    reports: dict[str, list[dict[str, Any]]] = {}
    for i, variant in enumerate(variants):
        for seed in range(budget.seeds):
            run = out / variant / f"seed{seed}"
            log.info("ablation %d/%d: %s, seed %d -> %s", i + 1, len(variants), variant, seed, run)
            cfg = load_config(
                resolve_preset(config), ablation=variant, overrides={"train.steps": budget.steps, "train.seed": seed}
            )
            resume = (run / "train" / "latest" / "train_state.pt").is_file()
            train(cfg, data, run / "train", device=budget.device, resume=resume, progress=progress)
            report = _finished_eval(run, budget.episodes)
            if report is None:  # the same held-out scenes for every variant and seed
                report = sim_eval(
                    run / "train" / "latest",
                    run / "eval",
                    episodes=budget.episodes,
                    device=budget.device,
                    progress=progress,
                    name=f"{variant}/seed{seed}",
                    workers=workers,
                    max_seconds=max_seconds,
                    attention=True,  # CSA variants: where each noun's attention falls (sim_eval.md)
                )
            reports.setdefault(variant, []).append(report)
    result = summarise(reports)
    result["budget"] = asdict(budget)
    result["config"] = config
    (out / "ablation.json").write_text(json.dumps(result, indent=1))
    (out / "ablation.md").write_text(markdown(result))
    plot_shoulder(out, variants, out / "fig3_shoulder.png")
    log.info("ablation:\n%s", markdown(result))
    return result


def _finished_eval(run: Path, episodes: int) -> dict[str, Any] | None:
    """The run's sim-eval report if it evaluated the current checkpoint with `episodes` per task."""
    report_file = run / "eval" / "sim_eval.json"
    weights = run / "train" / "latest" / "model.safetensors"
    if not report_file.is_file() or report_file.stat().st_mtime < weights.stat().st_mtime:
        return None
    report = json.loads(report_file.read_text())
    return report if all(t["episodes"] == episodes for t in report["tasks"].values()) else None


def summarise(reports: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Pool the seeds of each variant: successes per task with a 95% Wilson interval, mean smoothness."""
    rows: dict[str, Any] = {}
    for variant, reps in reports.items():
        tasks: dict[str, Any] = {}
        for task in reps[0]["tasks"]:
            ok = sum(r["tasks"][task]["successes"] for r in reps)
            n = sum(r["tasks"][task]["episodes"] for r in reps)
            first = sum(r["tasks"][task].get("first_instant_successes", 0) for r in reps)
            tasks[task] = {
                "successes": ok,
                "episodes": n,
                "success_rate": ok / n,
                "ci95": wilson_interval(ok, n),
                "first_instant_successes": first,
            }
        smooth = {k: float(np.nanmean([r["tasks"][t][k] for r in reps for t in r["tasks"]])) for k in SMOOTHNESS}
        steps = sum(s["episodes"] * s["mean_steps"] for r in reps for s in r["tasks"].values())
        rows[variant] = {
            "tasks": tasks,
            "mean_success": float(np.mean([t["success_rate"] for t in tasks.values()])),
            "seeds": len(reps),
            "held": float(sum(s["holds"] for r in reps for s in r["tasks"].values()) / max(steps, 1)),
            **smooth,
        }
    return {"variants": rows}


def markdown(result: dict[str, Any]) -> str:
    rows = result["variants"]
    tasks = list(next(iter(rows.values()))["tasks"])
    lines = [
        "Success by the end state (95% CI; the first-instant count beside it).",
        "",
        "| variant | " + " | ".join(tasks) + " | mean |",
        "|---|" + "---|" * (len(tasks) + 1),
    ]
    for name, r in rows.items():
        cells = []
        for t in tasks:
            s = r["tasks"][t]
            lo, hi = s["ci95"]
            cells.append(
                f"{s['successes']}/{s['episodes']} ({100 * s['success_rate']:.0f}%, {100 * lo:.0f}-{100 * hi:.0f}; "
                f"first instant {s.get('first_instant_successes', '-')})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * r['mean_success']:.1f}% |")
    lines += [
        "",
        "Executed smoothness (commanded joint targets, rad per control period; change against `wo_mcc` as in "
        "the paper's Fig. 3 text, negative: smoother). Held steps are steps the executor refused the policy's "
        "target (more than `max_jump_rad` from the arm, NaN): a policy held throughout has the smoothness of "
        "standing still.",
        "",
        "| variant | vel. fluct. | acc. fluct. | min acc. | held steps |",
        "|---|---|---|---|---|",
    ]
    ref = rows.get("wo_mcc")
    for name, r in rows.items():
        cells = []
        for k in SMOOTHNESS:
            rel = f" ({100 * (r[k] / ref[k] - 1):+.1f}%)" if ref and ref[k] and name != "wo_mcc" else ""
            cells.append(f"{r[k]:.5f}{rel}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * r['held']:.0f}% |")
    budget = result.get("budget")
    if budget:
        lines += [
            "",
            f"Budget: {budget['steps']} training steps, {budget['episodes']} episodes per task and seed, "
            f"{budget['seeds']} seed(s), preset `{result.get('config')}`, {budget['device']}.",
        ]
    return "\n".join(lines) + "\n"


def plot_shoulder(out: Path, variants: list[str], path: Path) -> bool:
    """Paper Fig. 3: velocity and acceleration of the shoulder joint, executed, per variant (seed 0, first
    evaluation scene of the first task: the same scene for every variant)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces = {}
    for v in variants:
        f = out / v / "seed0" / "eval" / EXECUTED_FILE
        if f.is_file():
            with np.load(f) as z:
                if z.files:
                    traces[v] = (sorted(z.files)[0], z[sorted(z.files)[0]][:, SHOULDER])
    if not traces:
        return False
    fig, (ax_v, ax_c) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for v, (_, q) in traces.items():
        ax_v.plot(np.diff(q), label=v, lw=1)
        ax_c.plot(q[2:] - 2 * q[1:-1] + q[:-2], label=v, lw=1)
    ax_v.set_ylabel("velocity (rad/step)")
    ax_c.set_ylabel("acceleration (rad/step²)")
    ax_c.set_xlabel("control step")
    task, scene = next(iter(traces.values()))[0].split("|")
    ax_v.set_title(f"shoulder joint (joint 2), executed: {task!r}, scene {scene}")
    ax_v.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
