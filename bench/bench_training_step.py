"""Where a training step of a preset spends its time: samples per second of variants, side by side from one run.

    .venv/bin/python bench/bench_training_step.py                  # small_cpu on this machine's cores

Each variant runs the trainer's step (forward with the expert chunk and, with MCC, the future latents that E_disc
compares; the loss; backward; the trainer's fused optimiser) on random data of the preset's shapes. Variants: the
preset; its vision encoder frozen with the tokens computed beforehand (the most a frozen encoder with cached
features can save); without the future latents; a 4x4 patch grid (fewer tokens); larger batches; the ACT-style
baseline. Weights are randomly initialised; the cost of a step does not depend on them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from ccol_policy.config import CCoLConfig, load_config, resolve_preset
from ccol_policy.losses import ccol_loss
from ccol_policy.model import CCoL, InstructionEncoder
from ccol_policy.training import build_optimizer

INSTRUCTION = "lift the pen"


def bench_config(preset: str, overrides: dict | None = None, ablation: str | None = None) -> CCoLConfig:
    """A preset's config without pretrained weights (randomly initialised, no hub download)."""
    cfg = load_config(resolve_preset(preset), overrides=overrides, ablation=ablation)
    cfg.vision.pretrained = None
    cfg.text.pretrained = None
    cfg.text.vocab = ["lift", "pen", "the"]
    return cfg


def step_fn(
    cfg: CCoLConfig,
    model: CCoL,
    text: InstructionEncoder,
    device: torch.device,
    batch: int,
    cached_vision: bool = False,
    future: bool = True,
) -> Callable[[], None]:
    """The trainer's step (forward with the expert chunk and, with MCC and `future`, the later latents E_disc
    compares; the loss; backward; the trainer's optimiser) on random data of `batch` samples."""
    m = cfg.model
    size = cfg.vision.image_size
    n_cam = len(cfg.vision.cameras)
    images = torch.randint(0, 255, (batch, n_cam, 3, size, size), dtype=torch.uint8, device=device)
    q = torch.randn(batch, m.state_dim, device=device)
    actions = torch.randn(batch, m.chunk_size, m.action_dim, device=device)
    is_pad = torch.zeros(batch, m.chunk_size, dtype=torch.bool, device=device)
    lang, pad = text.batch([INSTRUCTION] * batch, device)
    n = m.ode.time_points - 1
    fut = None
    if future and m.use_mcc:
        fut = (
            torch.randn(batch, n, m.state_dim, device=device),
            torch.randn(batch, n, m.chunk_size, m.action_dim, device=device),
            torch.zeros(batch, n, m.chunk_size, dtype=torch.bool, device=device),
        )
    model.train()
    vision = None
    if cached_vision:  # frozen encoder: its tokens computed once, outside the step
        for part in (model.vision, model.proj_vision):
            part.requires_grad_(False)
        model.camera_embed.requires_grad_(False)
        with torch.no_grad():
            vision = model.encode_vision(images, lang, pad)
    opt = build_optimizer(model, cfg)

    def step() -> None:
        out = model(images, q, lang, pad, actions=actions, is_pad=is_pad, future=fut, vision_tokens=vision)
        loss, _ = ccol_loss(out, actions, is_pad, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def samples_per_s(step: Callable[[], None], batch: int, steps: int, device: torch.device) -> float:
    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small_cpu")
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    base = bench_config(args.preset)
    b = base.optim.batch_size
    variants: list[tuple[str, dict, str | None, bool, bool]] = [
        # (name, overrides, ablation, vision tokens computed beforehand, future latents)
        (f"{args.preset} (batch {b})", {}, None, False, True),
        ("vision frozen, tokens cached", {}, None, True, True),
        ("no future latents (E_disc off)", {}, None, False, False),
        ("4x4 patch grid", {"vision.patch_size": base.vision.image_size // 4}, None, False, True),
        (f"batch {2 * b}", {"optim.batch_size": 2 * b}, None, False, True),
        (f"batch {4 * b}", {"optim.batch_size": 4 * b}, None, False, True),
        ("ACT-style baseline", {}, "act", False, True),
    ]
    rows = []
    cpu = torch.device("cpu")
    for name, overrides, ablation, cached, future in variants:
        cfg = bench_config(args.preset, overrides, ablation)
        torch.manual_seed(0)
        text = InstructionEncoder(cfg.text)
        model = CCoL(cfg, text.out_dim)
        batch = cfg.optim.batch_size
        step = step_fn(cfg, model, text, cpu, batch, cached_vision=cached, future=future)
        rate = samples_per_s(step, batch, args.steps, cpu)
        rows.append((name, batch, rate))
        print(f"{name}: {rate:.0f} samples/s", flush=True)
    ref = rows[0][2]
    threads = torch.get_num_threads()
    print(f"\npreset {args.preset}, torch {torch.__version__}, {threads} threads, {args.steps} steps each")
    print("| variant | batch | ms per step | samples/s | x the preset |")
    print("|---|---|---|---|---|")
    for name, batch, rate in rows:
        print(f"| {name} | {batch} | {1000 * batch / rate:.0f} | {rate:.0f} | {rate / ref:.2f} |")


if __name__ == "__main__":
    main()
