"""Closed-loop success on held-out scenes against demonstrations per task, for the privileged-state reference
(`ccol_sim.reference`: a diagnosis, never a policy) and for CCoL, at a fixed training budget.

    .venv/bin/python research/learning_curve.py --layout paper --demos 25,50,100 --out runs/curve_paper
    .venv/bin/python research/learning_curve.py --layout wide --demos 50,100,200 --policies reference

Records the largest number of scenes per task once (or reuses `--bags`/`--dataset`), builds the dataset, and
trains and evaluates each policy on the first N scenes per task. Every point is kept in its own folder, so an
interrupted run resumes. The table (markdown and JSON) and a plot land in --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import h5py

from ccol_policy.bags import BagTopics, SyncConfig
from ccol_policy.config import load_config, resolve_preset
from ccol_policy.dataset_builder import build_dataset
from ccol_policy.training import train
from ccol_sim.recording import record_demonstrations
from ccol_sim.reference import ReferenceConfig, run_reference
from ccol_sim.sim_eval import sim_eval

log = logging.getLogger("learning_curve")


def subset(dataset: Path, n: int, out: Path) -> Path:
    """A folder linking the first n scenes per task of `dataset` (episodes in file order)."""
    if out.is_dir():
        return out
    part = out.with_name(out.name + ".part")
    part.mkdir(parents=True, exist_ok=True)
    taken: dict[str, int] = {}
    for f in sorted(dataset.glob("episode_*.hdf5")):
        with h5py.File(f, "r") as h:
            task = str(h.attrs["instruction"])
        if taken.get(task, 0) < n:
            taken[task] = taken.get(task, 0) + 1
            (part / f.name).symlink_to(f.resolve())
    short = {t: c for t, c in taken.items() if c < n}
    if short:
        raise SystemExit(f"{dataset} has fewer than {n} episodes for {short}; record more (--bags)")
    part.rename(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", default="paper", choices=["paper", "wide"])
    ap.add_argument("--demos", default="25,50,100", help="demonstrations (scenes) per task, comma-separated")
    ap.add_argument("--policies", default="reference,ccol")
    ap.add_argument("--ccol-steps", type=int, default=None, help="CCoL training steps (default: the preset's)")
    ap.add_argument("--ref-steps", type=int, default=ReferenceConfig.steps)
    ap.add_argument("--config", default="small_cpu")
    ap.add_argument("--episodes", type=int, default=20, help="held-out episodes per task")
    ap.add_argument("--bags", type=Path, default=None, help="recorded bags to reuse (default: OUT/bags)")
    ap.add_argument("--dataset", type=Path, default=None, help="built dataset to reuse (default: OUT/dataset)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    demos = sorted(int(x) for x in args.demos.split(","))
    cfg = load_config(
        resolve_preset(args.config), overrides={"train.steps": args.ccol_steps} if args.ccol_steps else {}
    )
    size = cfg.vision.image_size
    bags, dataset = args.bags or args.out / "bags", args.dataset or args.out / "dataset"
    if not (dataset / ".complete").is_file():
        if not (bags / ".complete").is_file():
            record_demonstrations(bags, demos[-1], layout=args.layout)
            (bags / ".complete").write_text("ok\n")
        build_dataset([bags], dataset, BagTopics(arm_id="panda"), SyncConfig(image_width=size, image_height=size))
        (dataset / ".complete").write_text("ok\n")
    rows_file = args.out / "learning_curve.json"
    rows = json.loads(rows_file.read_text()) if rows_file.is_file() else []
    done = {(r["policy"], r["demos"]) for r in rows}
    for n in demos:
        data = subset(dataset, n, args.out / f"data_{n}")
        for policy in args.policies.split(","):
            if (policy, n) in done:
                continue
            t0 = time.perf_counter()
            if policy == "reference":
                report = run_reference(
                    data,
                    args.out / f"reference_{n}",
                    args.episodes,
                    layout=args.layout,
                    cfg=ReferenceConfig(steps=args.ref_steps),
                )
                steps, train_min = args.ref_steps, report["train_min"]
            else:
                run = args.out / f"ccol_{n}"
                train(cfg, [data], run, device="cpu", resume=(run / "latest" / "train_state.pt").is_file())
                train_min = (time.perf_counter() - t0) / 60
                report = sim_eval(run / "latest", run / "eval", episodes=args.episodes, layout=args.layout)
                steps = cfg.train.steps
            tasks = report["tasks"]
            rows.append(
                {
                    "policy": policy,
                    "demos": n,
                    "layout": args.layout,
                    "steps": steps,
                    "train_min": round(train_min, 1),
                    "total_min": round((time.perf_counter() - t0) / 60, 1),
                    "successes": {t: s["successes"] for t, s in tasks.items()},  # by the end state
                    "first_instant": {t: s.get("first_instant_successes") for t, s in tasks.items()},
                    "episodes": args.episodes,
                }
            )
            rows_file.write_text(json.dumps(rows, indent=1))
            log.info("%s, %d demos per task: %s", policy, n, rows[-1]["successes"])
    (args.out / "learning_curve.md").write_text(markdown(rows))
    plot(rows, args.out / "learning_curve.png")
    log.info("learning curve:\n%s", markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = [
        "Success by the end state; the first-instant count in brackets (rows measured before it: -).",
        "",
        "| layout | policy | demos/task | steps | train min | lift the pen | slide the cube | place the cubes | mean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["layout"], r["policy"], r["demos"])):
        s, n, first = r["successes"], r["episodes"], r.get("first_instant") or {}
        cells = [
            f"{s.get(t, 0)}/{n} ({first.get(t) if first.get(t) is not None else '-'})"
            for t in ("lift the pen", "slide the cube", "place the cubes")
        ]
        mean = 100 * sum(s.values()) / (n * len(s))
        lines.append(
            f"| {r['layout']} | {r['policy']} | {r['demos']} | {r['steps']} | {r['train_min']} | "
            + " | ".join(cells)
            + f" | {mean:.0f}% |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key in sorted({(r["layout"], r["policy"]) for r in rows}):
        pts = sorted(
            (r["demos"], 100 * sum(r["successes"].values()) / (r["episodes"] * len(r["successes"])))
            for r in rows
            if (r["layout"], r["policy"]) == key
        )
        ax.plot(*zip(*pts, strict=True), marker="o", label=f"{key[1]} ({key[0]} layout)")
    ax.set_xscale("log")
    demos = sorted({r["demos"] for r in rows})
    ax.set_xticks(demos, [str(d) for d in demos])
    ax.minorticks_off()
    ax.set_xlabel("demonstrations per task")
    ax.set_ylabel("held-out success (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
