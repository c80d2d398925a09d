"""Whether the CVAE latent carries anything: read from the validations a training run logged (metrics.jsonl).

    .venv/bin/python research/latent_usage.py runs/demo/train_ccol runs/demo/train_act --plot docs/latent_kl.png

Per run and validation step: the KL of each latent dimension on held-out chunks (`val_kl_per_dim`), how many
dimensions are active (KL > 0.01 nats, the usual "active units" count), and the held-out action L1 with the prior
latent (what the robot runs, `val_l1`) beside the L1 with z encoded from the held-out chunk itself
(`val_l1_posterior`). A latent that carries the demonstration's motion lowers the second; equal figures and KL ~ 0
in every dimension mean the posterior collapsed onto the prior, and the NeuralODE then evolves a trajectory that
holds nothing (MCC cannot act on it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ACTIVE_NATS = 0.01


def validations(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "val_kl_per_dim" in r]
    if not rows:
        raise SystemExit(f"{run}: no validation with val_kl_per_dim in metrics.jsonl (trained before it was logged)")
    return rows


def table(runs: list[Path]) -> str:
    lines = [
        "| run | step | KL (nats, sum) | largest dimension | active dimensions | held-out L1, prior z "
        "| held-out L1, posterior z | posterior / prior |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for r in validations(run):
            kl = np.array(r["val_kl_per_dim"])
            active = f"{(kl > ACTIVE_NATS).sum()}/{len(kl)}"
            lines.append(
                f"| {run.parent.name}/{run.name} | {r['step']} | {kl.sum():.2e} | {kl.max():.2e} | {active} | "
                f"{r['val_l1']:.4f} | {r['val_l1_posterior']:.4f} | {r['val_l1_posterior'] / r['val_l1']:.3f} |"
            )
    return "\n".join(lines)


def plot(runs: list[Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.5), squeeze=False)
    for ax, run in zip(axes[0], runs):
        rows = validations(run)
        steps = [r["step"] for r in rows]
        kl = np.array([r["val_kl_per_dim"] for r in rows])  # (validations, d_z)
        ax.plot(steps, np.maximum(kl, 1e-9), lw=0.8)
        ax.axhline(ACTIVE_NATS, color="k", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("held-out KL per latent dimension (nats)")
        ax.set_title(f"{run.parent.name}/{run.name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="training output folders (with metrics.jsonl)")
    ap.add_argument("--plot", type=Path, help="KL per dimension against step, one panel per run (PNG)")
    args = ap.parse_args()
    print(table(args.runs))
    if args.plot:
        plot(args.runs, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
