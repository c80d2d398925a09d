"""`ccol eval-bag`: replay recorded bags through one or more checkpoints and report accuracy, smoothness,
latency and CSA attention, as Markdown + PNG + JSON.

Each bag is synchronised exactly as `ccol build-dataset` does (at the checkpoint's control rate); at every grid
step the policy predicts a chunk from that step's image and joint state, which is compared with the recorded
joint positions of the next k steps. The executed trajectory is what ACT-style temporal ensembling of those
chunks would have commanded. Images are decoded one at a time while stepping through the bag.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ccol_policy.bags import BagError, BagTopics, SyncConfig, iter_images, read_streams, synchronise
from ccol_policy.control import TemporalEnsembler, control_rate_hz
from ccol_policy.metrics import attention_share, horizon_errors, patch_coverage, per_joint_l1, smoothness
from ccol_policy.policy import CCoLPolicy

log = logging.getLogger(__name__)

STOPWORDS = {"the", "a", "an", "to", "on", "onto", "into", "in", "of", "and", "with", "<s>", "</s>", "·", ""}
GRIPPER_CLOSED_M = 0.04  # a gripper label below this width is a close command
# (bag, (H, W) of its images) -> {noun: (H, W) bool image region of the object it names}
Regions = Callable[[Path, tuple[int, int]], dict[str, np.ndarray]]


@dataclass
class BagEvaluation:
    bag: str
    instruction: str
    times: np.ndarray  # (T,)
    qpos: np.ndarray  # (T, A) recorded
    preds: np.ndarray  # (T, k, A)
    targets: np.ndarray  # (T, k, A): recorded joint positions of the next k steps
    valid: np.ndarray  # (T, k)
    executed: np.ndarray  # (T, A) temporal ensembling of the predictions
    latency_ms: np.ndarray  # (T,)
    words: list[str] = field(default_factory=list)
    word_attention: np.ndarray | None = None  # (T, L): attention mass of each word on the image patches
    attention_maps: list[dict[str, Any]] = field(default_factory=list)  # chosen steps: image + (L, g, g) maps
    noun_attention: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # noun -> (share, area)/step


def word_roles(words: list[str]) -> dict[int, str]:
    """Content words of an instruction: the first is taken as the verb, the others as nouns ("lift the pen")."""
    content = [i for i, w in enumerate(words) if w.lower().strip("ġ ") not in STOPWORDS]
    return {i: ("verb" if n == 0 else "noun") for n, i in enumerate(content)}


def has_csa_attention(policy: CCoLPolicy) -> bool:
    """Whether the policy has CSA cross-attention weights to read (not without CSA or with `avgpool`)."""
    return policy.cfg.model.use_csa and policy.cfg.model.csa_mode == "attention"


def noun_attention_shares(policy: CCoLPolicy, regions: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """After a `predict_chunk(..., need_attention=True)`: for each noun of the instruction that has a region
    in `regions` ((H, W) bool, the camera frame), the `metrics.attention_share` of its last-block attention
    over the first camera's patches -> {noun: (share, area)}."""
    layout = policy.model.layout
    g = layout.patch_grid
    att = policy.last_attention[-1].lang_to_context[0].float().cpu().numpy()  # (L, N)
    patches = att[:, layout.vision][:, : g * g]  # (L, g * g)
    out = {}
    for i, role in word_roles(policy.last_words).items():
        word = policy.last_words[i].lower().strip("ġ ")
        if role == "noun" and word in regions:
            out[word] = attention_share(patches[i], patch_coverage(regions[word], g))
    return out


def summarise_shares(shares: list[tuple[float, float]]) -> dict[str, Any]:
    """(share, area) per step -> steps, mean share (finite ones), mean area."""
    ok = [x for x in shares if np.isfinite(x[0])]
    return {
        "steps": len(ok),
        "share": float(np.mean([x[0] for x in ok])) if ok else float("nan"),
        "area": float(np.mean([x[1] for x in ok])) if ok else float("nan"),
    }


def _stream_images(bag: Path, topic: str, indices: np.ndarray):
    """Yield the image for each grid step in order, decoding each bag image once and keeping one in memory."""
    if np.all(np.diff(indices) >= 0):
        source = iter_images(bag, topic, indices)
        current_idx, current = -1, None
        for idx in indices:
            while current_idx != idx:
                current_idx, current = next(source)
            yield current
    else:  # out-of-order stamps: fall back to a cache of the needed frames
        cache = dict(iter_images(bag, topic, indices))
        for idx in indices:
            yield cache[int(idx)]


def evaluate_bag(
    policy: CCoLPolicy,
    bag: Path,
    topics: BagTopics,
    cfg: SyncConfig,
    instruction: str | None = None,
    attention_steps: int = 4,
    ensemble_m: float = 0.01,
    regions: Regions | None = None,
) -> BagEvaluation:
    """One bag through one policy. `regions(bag, (H, W))` gives the image region of each noun at the episode's
    start (e.g. `ccol_sim.sim_eval.scene_regions` for simulator bags); then, for the steps before the recorded
    gripper label first closes (the objects have not moved yet), the share of each noun's CSA attention on its
    region is measured (`metrics.attention_share`)."""
    streams = read_streams(bag, topics, cfg)
    if instruction:
        streams.instruction = instruction
    ep = synchronise(streams, cfg, where=str(bag))
    k = policy.chunk_size
    a_dim = policy.cfg.model.action_dim
    if ep.qpos.shape[1] != policy.state_dim:
        raise BagError(f"{bag}: the bag gives {ep.qpos.shape[1]}-D joint states, the policy needs {policy.state_dim}")
    policy.set_instruction(ep.instruction)
    n = len(ep.times)
    preds = np.zeros((n, k, a_dim), np.float32)
    targets = np.zeros((n, k, a_dim), np.float32)
    valid = np.zeros((n, k), bool)
    latency = np.zeros(n)
    executed = np.zeros((n, a_dim), np.float32)
    ens = TemporalEnsembler(k, a_dim, ensemble_m)
    use_att = has_csa_attention(policy)
    layout = policy.model.layout
    chosen = set(np.linspace(0, n - 1, attention_steps).round().astype(int).tolist()) if attention_steps else set()
    word_att: list[np.ndarray] = []
    maps: list[dict[str, Any]] = []
    closed = np.flatnonzero(ep.action[:, -1] < GRIPPER_CLOSED_M) if a_dim > 7 else np.array([], int)
    reach_end = int(closed[0]) if len(closed) else n
    noun_att: dict[str, list[tuple[float, float]]] = {}
    masks: dict[str, np.ndarray] | None = None
    for t, image in enumerate(_stream_images(bag, topics.color, ep.image_index)):
        t0 = time.perf_counter()
        chunk = policy.predict_chunk(image, ep.qpos[t], need_attention=use_att)
        latency[t] = (time.perf_counter() - t0) * 1000
        preds[t] = chunk
        future = ep.action[t : t + k]
        targets[t, : len(future)] = future
        targets[t, len(future) :] = future[-1]
        valid[t, : len(future)] = True
        ens.add(t, chunk)
        executed[t] = ens.action(t)
        if use_att and policy.last_attention:
            att = policy.last_attention[-1].lang_to_context[0].float().cpu().numpy()  # (L, N)
            vis = att[:, layout.vision]  # (L, n_cam * P)
            word_att.append(vis.sum(-1))
            if regions is not None and t < reach_end:
                masks = regions(bag, image.shape[:2]) if masks is None else masks
                for noun, share in noun_attention_shares(policy, masks).items():
                    noun_att.setdefault(noun, []).append(share)
            if t in chosen:
                g = layout.patch_grid
                maps.append(
                    {"step": t, "time": float(ep.times[t]), "image": image, "maps": vis[:, : g * g].reshape(-1, g, g)}
                )
    return BagEvaluation(
        bag=str(bag),
        instruction=ep.instruction,
        times=ep.times,
        qpos=ep.qpos,
        preds=preds,
        targets=targets,
        valid=valid,
        executed=executed,
        latency_ms=latency,
        words=list(policy.last_words),
        word_attention=np.stack(word_att) if word_att else None,
        attention_maps=maps,
        noun_attention=noun_att,
    )


def summarise(evals: list[BagEvaluation], horizons: list[int]) -> dict[str, Any]:
    """All figures of one checkpoint over its bags."""
    preds = np.concatenate([e.preds for e in evals])
    targets = np.concatenate([e.targets for e in evals])
    valid = np.concatenate([e.valid for e in evals])
    lat = np.concatenate([e.latency_ms for e in evals])
    errs = horizon_errors(preds, targets, valid, horizons)

    def mean_smooth(trajs: list[np.ndarray]) -> dict[str, float]:
        rows = [smoothness(x) for x in trajs]
        return {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}

    return {
        **errs,
        "l1_per_joint": per_joint_l1(preds, targets, valid),
        "predicted": mean_smooth([p[v] for e in evals for p, v in zip(e.preds, e.valid)]),
        "executed": mean_smooth([e.executed for e in evals]),
        "recorded": mean_smooth([e.qpos for e in evals]),
        "latency_ms_median": float(np.median(lat)),
        "latency_ms_p99": float(np.percentile(lat, 99)),
        "steps": int(len(preds)),
        "bags": [e.bag for e in evals],
        "noun_attention": {
            noun: summarise_shares([x for e in evals for x in e.noun_attention.get(noun, [])])
            for noun in sorted({w for e in evals for w in e.noun_attention})
        },
    }


# ---------------------------------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path) -> None:  # noqa: ANN001 - pyplot and its Figure, imported lazily
    """Lay out, write (PNG, 90 dpi) and close a report figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_trajectories(ev: dict[str, BagEvaluation], path: Path) -> None:
    """Recorded vs executed (ensembled) vs one-step prediction, per joint, for one bag and every checkpoint."""
    plt = _plt()
    first = next(iter(ev.values()))
    a = first.qpos.shape[1]
    fig, axes = plt.subplots(2, (a + 1) // 2, figsize=(3.2 * ((a + 1) // 2), 5.5), squeeze=False)
    for j, ax in enumerate(axes.flat):
        if j >= a:
            ax.axis("off")
            continue
        ax.plot(first.times, first.qpos[:, j], "k-", lw=2, alpha=0.5, label="recorded")
        for name, e in ev.items():
            ax.plot(e.times, e.executed[:, j], lw=1, label=f"{name} executed")
        ax.set_title("gripper width" if j == 7 else f"joint {j + 1}", fontsize=9)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{Path(first.bag).name}: {first.instruction!r}", fontsize=10)
    _save(plt, fig, path)


def plot_error_vs_horizon(evals: dict[str, list[BagEvaluation]], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, es in evals.items():
        preds = np.concatenate([e.preds for e in es])
        targets = np.concatenate([e.targets for e in es])
        valid = np.concatenate([e.valid for e in es])
        err = (np.abs(preds - targets).mean(-1) * valid).sum(0) / np.maximum(valid.sum(0), 1)
        ax.plot(np.arange(1, len(err) + 1), err, label=name)
    ax.set_xlabel("horizon (steps)")
    ax.set_ylabel("L1 (rad)")
    ax.set_title("error against horizon")
    ax.legend(fontsize=7)
    _save(plt, fig, path)


def plot_velocity_acceleration(ev: dict[str, BagEvaluation], path: Path, joint: int = 1) -> None:
    """The paper's Fig. 3: velocity and acceleration of the shoulder joint, recorded vs executed."""
    plt = _plt()
    fig, (ax_v, ax_c) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
    first = next(iter(ev.values()))
    series = {"recorded": first.qpos[:, joint], **{name: e.executed[:, joint] for name, e in ev.items()}}
    for name, x in series.items():
        style = {"color": "k", "alpha": 0.5, "lw": 2} if name == "recorded" else {"lw": 1}
        ax_v.plot(first.times[:-1], np.diff(x), label=name, **style)
        ax_c.plot(first.times[:-2], x[2:] - 2 * x[1:-1] + x[:-2], label=name, **style)
    ax_v.set_ylabel("velocity (rad/step)")
    ax_c.set_ylabel("acceleration (rad/step²)")
    ax_c.set_xlabel("time (s)")
    ax_v.legend(fontsize=7)
    ax_v.set_title(f"joint {joint + 1} smoothness")
    _save(plt, fig, path)


def plot_attention_maps(e: BagEvaluation, path: Path) -> bool:
    """For chosen steps: the image and each content word's attention over the patches (paper Fig. 2/4)."""
    if not e.attention_maps:
        return False
    plt = _plt()
    roles = word_roles(e.words)
    idx = list(roles) or list(range(len(e.words)))
    rows, cols = len(e.attention_maps), 1 + len(idx)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for r, m in enumerate(e.attention_maps):
        img = m["image"]
        axes[r, 0].imshow(img)
        axes[r, 0].set_title(f"t={m['time']:.1f}s", fontsize=8)
        for c, w in enumerate(idx, start=1):
            heat = m["maps"][w]
            axes[r, c].imshow(img)
            axes[r, c].imshow(
                heat / max(heat.max(), 1e-9),
                cmap="jet",
                alpha=0.5,
                interpolation="bilinear",
                extent=(0, img.shape[1], img.shape[0], 0),
            )
            axes[r, c].set_title(f"{e.words[w]} ({roles.get(w, '')})", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    _save(plt, fig, path)
    return True


def plot_word_attention_over_time(e: BagEvaluation, path: Path) -> bool:
    if e.word_attention is None:
        return False
    plt = _plt()
    roles = word_roles(e.words)
    fig, ax = plt.subplots(figsize=(6, 3))
    for w, role in roles.items():
        ax.plot(e.times, e.word_attention[:, w], label=f"{e.words[w]} ({role})", ls="-" if role == "verb" else "--")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("attention on image patches")
    ax.set_title("word attention over time")
    ax.legend(fontsize=7)
    _save(plt, fig, path)
    return True


# ---------------------------------------------------------------------------------------------------- report
def evaluate(
    checkpoints: dict[str, str | Path],
    bags: list[Path],
    out_dir: Path,
    topics: BagTopics,
    instruction: str | None = None,
    device: str = "auto",
    rate_hz: float | None = None,
    attention_steps: int = 4,
    max_image_age_s: float = SyncConfig.max_image_age_s,
    max_joint_gap_s: float = SyncConfig.max_joint_gap_s,
    max_gripper_gap_s: float = SyncConfig.max_gripper_gap_s,
    progress: bool = True,
    regions: Regions | None = None,
) -> dict[str, Any]:
    """Evaluate every checkpoint on every bag; bad bags are skipped with their reason. Writes the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[BagEvaluation]] = {}
    skipped: dict[str, str] = {}
    for name, ckpt in checkpoints.items():
        policy = CCoLPolicy.from_checkpoint(ckpt, device=device)
        rate = rate_hz or control_rate_hz(policy.ckpt.meta)
        cfg = SyncConfig(
            control_rate_hz=rate,
            max_image_age_s=max_image_age_s,
            max_joint_gap_s=max_joint_gap_s,
            max_gripper_gap_s=max_gripper_gap_s,
            use_depth=policy.cfg.vision.use_depth,
            use_gripper=policy.state_dim > 7,
        )
        iterator = bags
        if progress:
            from tqdm import tqdm

            iterator = tqdm(bags, desc=f"eval {name}", unit="bag")
        for bag in iterator:
            try:
                ev = evaluate_bag(
                    policy, bag, topics, cfg, instruction, attention_steps=attention_steps, regions=regions
                )
                results.setdefault(name, []).append(ev)
            except BagError as exc:
                skipped[str(bag)] = str(exc).removeprefix(f"{bag}: ")
                log.warning("skipping %s: %s", bag, skipped[str(bag)])
    if not results:
        raise BagError("no bag could be evaluated: " + "; ".join(f"{Path(b).name}: {r}" for b, r in skipped.items()))
    k = max(e.preds.shape[1] for es in results.values() for e in es)
    horizons = sorted({1, min(10, k), k})
    summary = {name: summarise(es, horizons) for name, es in results.items()}
    figures = {"error_vs_horizon": "error_vs_horizon.png"}
    plot_error_vs_horizon(results, out_dir / figures["error_vs_horizon"])
    first_bag = {name: es[0] for name, es in results.items()}
    plot_trajectories(first_bag, out_dir / "trajectories.png")
    plot_velocity_acceleration(first_bag, out_dir / "velocity_acceleration.png")
    figures.update(trajectories="trajectories.png", velocity_acceleration="velocity_acceleration.png")
    for name, es in results.items():
        if plot_attention_maps(es[0], out_dir / f"attention_{name}.png"):
            figures[f"attention_{name}"] = f"attention_{name}.png"
        if plot_word_attention_over_time(es[0], out_dir / f"word_attention_{name}.png"):
            figures[f"word_attention_{name}"] = f"word_attention_{name}.png"
    report = {
        "checkpoints": {n: str(c) for n, c in checkpoints.items()},
        "horizons": horizons,
        "summary": summary,
        "skipped": skipped,
        "figures": figures,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    (out_dir / "report.md").write_text(markdown_report(report))
    return report


def comparison_table(report: dict[str, Any]) -> str:
    hs = report["horizons"]
    head = [
        "checkpoint",
        *[f"L1@{h}" for h in hs],
        f"RMSE@{hs[-1]}",
        "vel. fluct. (exec)",
        "acc. fluct. (exec)",
        "min acc. (exec)",
        "latency ms (median / p99)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in report["summary"].items():
        ex = s["executed"]
        cells = [
            name,
            *[f"{s[f'l1@{h}']:.4f}" for h in hs],
            f"{s[f'rmse@{hs[-1]}']:.4f}",
            f"{ex['velocity_fluctuation']:.5f}",
            f"{ex['acceleration_fluctuation']:.5f}",
            f"{ex['min_acceleration']:.5f}",
            f"{s['latency_ms_median']:.2f} / {s['latency_ms_p99']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(report: dict[str, Any]) -> str:
    parts = ["# Offline evaluation", "", comparison_table(report), ""]
    for name, s in report["summary"].items():
        joints = ", ".join(f"{x:.4f}" for x in s["l1_per_joint"])
        parts.append(
            f"- **{name}**: {s['steps']} steps from {len(s['bags'])} bag(s); L1 per joint: {joints}; "
            f"predicted-chunk acceleration fluctuation {s['predicted']['acceleration_fluctuation']:.5f}, "
            f"recorded {s['recorded']['acceleration_fluctuation']:.5f}"
        )
    rows = [(n, w, a) for n, s in report["summary"].items() for w, a in s.get("noun_attention", {}).items()]
    if rows:
        parts += [
            "",
            "## Where each noun's CSA attention falls (before the first grasp)",
            "",
            "| checkpoint | noun | steps | attention on its object | object's share of the image (uniform) |",
            "|---|---|---|---|---|",
        ]
        parts += [
            f"| {n} | {w} | {a['steps']} | {100 * a['share']:.1f}% | {100 * a['area']:.1f}% |" for n, w, a in rows
        ]
    if report["skipped"]:
        parts += ["", "## Skipped bags", ""] + [f"- `{Path(b).name}`: {r}" for b, r in report["skipped"].items()]
    parts += ["", "## Figures", ""] + [f"![{k}]({v})" for k, v in report["figures"].items()]
    return "\n".join(parts) + "\n"
