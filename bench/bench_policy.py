"""Inference latency and training throughput of CCoL against the ACT-style baseline, measured side by side.

    .venv/bin/python bench/bench_policy.py                         # small_cpu preset on this machine
    .venv/bin/python bench/bench_policy.py --preset paper_vit_b --device cuda --half

Weights are randomly initialised (same architecture as the preset; no hub download). Prints one table and the
ratios CCoL / ACT last; the policy node's real-time target is 67 Hz (15 ms per cycle).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_training_step import INSTRUCTION, bench_config, samples_per_s, step_fn  # this folder

from ccol_policy.checkpoint import Checkpoint
from ccol_policy.data import NormStats
from ccol_policy.model import CCoL, InstructionEncoder
from ccol_policy.policy import CCoLPolicy


def build(preset: str, ablation: str | None, device: torch.device, half: bool) -> CCoLPolicy:
    cfg = bench_config(preset, ablation=ablation)
    torch.manual_seed(0)
    text = InstructionEncoder(cfg.text)
    model = CCoL(cfg, text.out_dim)
    a, s = cfg.model.action_dim, cfg.model.state_dim
    stats = NormStats(np.zeros(s, np.float32), np.ones(s, np.float32), np.zeros(a, np.float32), np.ones(a, np.float32))
    ckpt = Checkpoint(model=model, text=text, config=cfg, stats=stats, instructions=[INSTRUCTION])
    return CCoLPolicy(ckpt, device, half=half)


def latency(policy: CCoLPolicy, iters: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    q = rng.normal(size=policy.state_dim).astype(np.float32)
    policy.set_instruction(INSTRUCTION)
    for _ in range(5):
        policy.predict_chunk(img, q)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        policy.predict_chunk(img, q)  # includes the copy back to the host, as the node does
        times.append(time.perf_counter() - t0)
    return np.array(times) * 1e3


def train_rate(policy: CCoLPolicy, steps: int, batch: int) -> float:
    """Training samples per second of the policy's network (`bench_training_step`'s step, without E_disc)."""
    rate = samples_per_s(
        step_fn(policy.cfg, policy.model, policy.text, policy.device, batch, future=False), batch, steps, policy.device
    )
    policy.model.eval()
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small_cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--half", action="store_true", help="fp16 autocast at inference (CUDA)")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--train-steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()
    device = torch.device(args.device)
    rows = {}
    for name, ablation in (("CCoL", None), ("ACT", "act")):
        policy = build(args.preset, ablation, device, args.half)
        ms = latency(policy, args.iters)
        rows[name] = (np.median(ms), np.percentile(ms, 99), train_rate(policy, args.train_steps, args.batch))
    print(f"preset {args.preset} on {device} (half={args.half}), torch {torch.__version__}")
    print(f"{'model':6} {'median ms':>10} {'p99 ms':>8} {'Hz':>7} {'train samples/s':>16}")
    for name, (med, p99, rate) in rows.items():
        print(f"{name:6} {med:10.2f} {p99:8.2f} {1000 / med:7.1f} {rate:16.1f}")
    c, a = rows["CCoL"], rows["ACT"]
    print(f"ratio CCoL/ACT: latency {c[0] / a[0]:.2f}x, p99 {c[1] / a[1]:.2f}x, train throughput {c[2] / a[2]:.2f}x")


if __name__ == "__main__":
    main()
