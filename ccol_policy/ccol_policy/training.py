"""Offline trainer: HDF5 episodes -> checkpoint directory, on CPU, one GPU or many (torchrun + DDP).

    out/
      latest/       checkpoint + train_state.pt (written every `train.save_every` steps; --resume starts here)
      best/         checkpoint with the lowest validation action L1
      metrics.jsonl one JSON line per log/validation step (rank 0)
      tb/           TensorBoard event files
      loss_curve.png

Data order and the CVAE's reparameterisation noise come from generators seeded by (seed, step), so a resumed
run and a run on several ranks see exactly the samples and noise of an uninterrupted single-process run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from ccol_policy.checkpoint import TRAIN_STATE, compare_configs, save_checkpoint
from ccol_policy.config import CCoLConfig, config_from_dict
from ccol_policy.data import (
    DatasetError,
    EpisodeDataset,
    NormStats,
    dataset_hash,
    load_or_compute_norm_stats,
    scan_episodes,
    split_episodes,
)
from ccol_policy.lerobot import resolve_data_dirs
from ccol_policy.losses import ccol_loss, kl_per_dimension
from ccol_policy.metrics import mean_smoothness, per_joint_l1
from ccol_policy.model import CCoL, InstructionEncoder
from ccol_policy.model.text import build_vocab
from ccol_policy.policy import resolve_device

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): nccl on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


class StepBatchSampler(Sampler[list[int]]):
    """Batches for steps start..end-1: step s draws `global_batch` indices from a generator seeded by (seed, s);
    rank r takes its slice. Deterministic across resumes and world sizes."""

    def __init__(self, n: int, global_batch: int, seed: int, start: int, end: int, rank: int, world: int) -> None:
        if global_batch % world:
            raise ValueError(f"optim.batch_size={global_batch} must be divisible by the {world} processes")
        self.n, self.batch, self.seed = n, global_batch, seed
        self.start, self.end, self.rank, self.world = start, end, rank, world

    def indices(self, step: int) -> list[int]:
        g = np.random.default_rng([self.seed, step])
        idx = g.choice(self.n, size=self.batch, replace=self.n < self.batch)
        per = self.batch // self.world
        return idx[self.rank * per : (self.rank + 1) * per].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.end):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(0, self.end - self.start)


def step_noise(seed: int, step: int, global_batch: int, latent_dim: int, rank: int, world: int) -> torch.Tensor:
    """The reparameterisation noise of this rank's slice of the global batch at `step`."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    eps = torch.randn(global_batch, latent_dim, generator=g)
    per = global_batch // world
    return eps[rank * per : (rank + 1) * per]


def lr_factor(step: int, cfg: CCoLConfig) -> float:
    o = cfg.optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    if o.schedule == "cosine":
        span = max(1, cfg.train.steps - o.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - o.warmup_steps) / span)))
    return 1.0


def build_optimizer(model: torch.nn.Module, cfg: CCoLConfig) -> torch.optim.Optimizer:
    """SGD or AdamW; weight decay on weight matrices only, never on biases and normalisation gains (1-D). Fused
    kernels: one update over all parameters instead of a loop of small ones (small_cpu: 18 -> 4 ms per update)."""
    params = [p for p in model.parameters() if p.requires_grad]
    o = cfg.optim
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": o.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if o.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, fused=True)
    return torch.optim.AdamW(groups, lr=o.lr, fused=True)


def _batch_to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    best_val_l1: float
    history: list[dict[str, Any]] = field(default_factory=list)
    samples_per_s: float = 0.0


class Trainer:
    """Builds everything from a config and data set directories; `run()` trains to `cfg.train.steps`."""

    def __init__(
        self,
        cfg: CCoLConfig,
        data_dirs: list[str | Path],
        out_dir: str | Path,
        device: str = "auto",
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.dist = init_distributed(device)
        self.device = resolve_device(device)
        if self.device.type == "cuda" and self.device.index is None and self.dist.world > 1:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.out = Path(out_dir)
        self.progress = progress and self.dist.main
        self.cfg = cfg
        cfg.validate()
        if cfg.train.precision != "fp32" and self.device.type != "cuda":
            raise ValueError(f"train.precision={cfg.train.precision} needs a GPU; use fp32 on {self.device}")

        # --- data: every check that can fail happens before the first step ---
        if self.dist.world > 1 and not self.dist.main:
            dist.barrier()  # rank 0 converts LeRobot directories once; the others then find them in the cache
        data_dirs = resolve_data_dirs(data_dirs, progress=self.progress, cameras=list(cfg.vision.cameras))
        if self.dist.world > 1 and self.dist.main:
            dist.barrier()
        infos = scan_episodes(data_dirs, cfg.data.default_instruction, cfg.vision.cameras)
        first = infos[0]
        if (first.state_dim, first.action_dim) != (cfg.model.state_dim, cfg.model.action_dim):
            raise DatasetError(
                f"episodes have state_dim={first.state_dim}, action_dim={first.action_dim} but the config has "
                f"model.state_dim={cfg.model.state_dim}, model.action_dim={cfg.model.action_dim}; "
                f"pass --set model.state_dim={first.state_dim} --set model.action_dim={first.action_dim}"
            )
        if cfg.vision.use_depth and not all(i.has_depth for i in infos):
            raise DatasetError("vision.use_depth is set but some episodes have no /observations/depth")
        train_infos, val_infos = split_episodes(infos, cfg.data.val_fraction, cfg.train.seed)
        self.n_train_episodes, self.n_val_episodes = len(train_infos), len(val_infos)
        # statistics of the training episodes only: validation stays unseen
        self.stats: NormStats = load_or_compute_norm_stats(train_infos, Path(data_dirs[0]))
        self.stats.check_dims(cfg.model.state_dim, cfg.model.action_dim)
        self.instructions = sorted({i.instruction for i in infos})
        self.control_rate_hz = next((i.control_rate_hz for i in infos if i.control_rate_hz), None)
        if not cfg.text.pretrained and not cfg.text.vocab:
            cfg.text.vocab = build_vocab(self.instructions)
        self.dataset_hash = dataset_hash(infos)
        ds_args = dict(
            stats=self.stats,
            chunk_size=cfg.model.chunk_size,
            cameras=cfg.vision.cameras,
            instructions=self.instructions,
            use_depth=cfg.vision.use_depth,
            cache_images=cfg.data.cache_images,
            rest_after_end=cfg.data.rest_after_end,
        )
        offsets = cfg.model.ode.grid_offsets() if cfg.model.use_mcc else ()  # E_disc's steps (logged if weight 0)
        self.train_set = EpisodeDataset(train_infos, **ds_args, latent_offsets=offsets)
        self.val_set = EpisodeDataset(val_infos, **ds_args, latent_offsets=offsets) if val_infos else None

        # --- model ---
        torch.manual_seed(cfg.train.seed)
        self.text = InstructionEncoder(cfg.text).to(self.device)
        self.lang, self.lang_pad = self.text.batch(self.instructions, self.device)  # (n_instr, L, d_l), cached once
        self.model = CCoL(cfg, self.text.out_dim).to(self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg))
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.precision == "fp16")
        self.step = 0
        self.best_val = float("inf")
        self.history: list[dict[str, Any]] = []
        if resume:
            self._resume()
        self.forward_model: torch.nn.Module = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.train.compile:
            self.forward_model = torch.compile(self.forward_model)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.train.precision)

    # ------------------------------------------------------------------ state
    def _resume(self) -> None:
        latest = self.out / "latest"
        state_path = latest / TRAIN_STATE
        if not state_path.is_file():
            raise FileNotFoundError(f"--resume: no {state_path}; start without --resume or point --out elsewhere")
        import yaml
        from safetensors.torch import load_file

        saved = config_from_dict(yaml.safe_load((latest / "config.yaml").read_text()))
        saved.train.steps = self.cfg.train.steps  # training longer is allowed
        diffs = compare_configs(saved, self.cfg)
        if diffs:
            raise ValueError("--resume with a different config: " + "; ".join(diffs[:8]))
        self.model.load_state_dict(load_file(latest / "model.safetensors"))
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step = state["step"]
        self.best_val = state["best_val"]
        self.history = state.get("history", [])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        if torch.cuda.is_available() and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resumed from %s at step %d", latest, self.step)

    def _train_state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "best_val": self.best_val,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def _meta(self, val: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "step": self.step,
            "dataset_hash": self.dataset_hash,
            "train_episodes": self.n_train_episodes,
            "val_episodes": self.n_val_episodes,
            "instructions": self.instructions,
            "control_rate_hz": self.control_rate_hz,
            "validation": val or {},
            "best_val_l1": self.best_val,
            "world_size": self.dist.world,
            "torch": torch.__version__,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def model_card(self, val: dict[str, Any] | None) -> str:
        c = self.cfg
        m = c.model
        variant = "ACT-style baseline" if not (m.use_mcc or m.use_csa) else "CCoL"
        lines = [
            f"# {variant} policy",
            "",
            f"- Instructions: {', '.join(repr(i) for i in self.instructions)}",
            f"- Trained {self.step} steps on {self.n_train_episodes} episodes ({self.n_val_episodes} held out), "
            f"dataset hash `{self.dataset_hash}`",
            f"- Vision: ViT {c.vision.pretrained or 'from scratch'} ({c.vision.hidden_size}-d, "
            f"{c.vision.image_size}px, frozen={c.vision.freeze}, depth={c.vision.use_depth}), "
            f"cameras {c.vision.cameras}",
            f"- Text: RoBERTa {c.text.pretrained or 'from scratch'}",
            f"- MCC (NeuralODE {m.ode.solver}, {m.ode.time_points} points, step {m.ode.step}): {m.use_mcc}; "
            f"CSA: {m.use_csa} ({m.csa_mode}); proprio encoder: {m.proprio_encoder}",
            f"- Action chunk: k={m.chunk_size}, action_dim={m.action_dim}",
            f"- Optimiser: {c.optim.optimizer} lr={c.optim.lr}, batch {c.optim.batch_size}, "
            f"precision {c.train.precision}",
        ]
        if val:
            lines.append(
                f"- Validation action L1 (robot units): {val['val_l1']:.4f}; per joint: "
                + ", ".join(f"{x:.4f}" for x in val["val_l1_per_joint"])
                + (f"; episodes' first k steps: {val['val_l1_start']:.4f}" if "val_l1_start" in val else "")
            )
        lines += [
            "",
            'Run it: `ros2 launch ccol_bringup policy.launch.py checkpoint:=<this dir> instruction:="..."`',
            "",
        ]
        return "\n".join(lines)

    def save(self, name: str, val: dict[str, Any] | None, with_state: bool) -> None:
        if not self.dist.main:
            return
        save_checkpoint(
            self.out / name,
            self.model,
            self.text,
            self.cfg,
            self.stats,
            self.instructions,
            self._meta(val),
            extra_files={"README.md": self.model_card(val)},
            train_state=self._train_state() if with_state else None,
        )

    # ------------------------------------------------------------------ loops
    def _loader(self, sampler: Iterable[list[int]], dataset: EpisodeDataset) -> DataLoader:
        workers = self.cfg.data.num_workers
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            generator=torch.Generator().manual_seed(self.cfg.train.seed),  # keeps the global RNG untouched
        )

    def _forward(
        self,
        model: torch.nn.Module,
        batch: dict[str, torch.Tensor],
        noise: torch.Tensor | None,
        posterior: bool = False,
    ) -> Any:
        """Training forward (expert chunk encoded) when noise is given or `posterior`; deployment-like otherwise."""
        posterior = posterior or noise is not None
        lang = self.lang[batch["instruction"]]
        pad = self.lang_pad[batch["instruction"]]
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            return model(
                batch["images"],
                batch["qpos"],
                lang,
                pad,
                depth=batch.get("depth"),
                actions=batch["actions"] if posterior else None,
                is_pad=batch["is_pad"] if posterior else None,
                noise=noise,
                future=(batch["future_qpos"], batch["future_actions"], batch["future_is_pad"])
                if posterior and "future_qpos" in batch
                else None,
            )

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One optimisation step on this rank's part of the global batch; returns the loss terms."""
        self.model.train()
        noise = step_noise(
            self.cfg.train.seed,
            step,
            self.cfg.optim.batch_size,
            self.cfg.model.latent_dim,
            self.dist.rank,
            self.dist.world,
        ).to(self.device)
        out = self._forward(self.forward_model, batch, noise)
        loss, terms = ccol_loss(out, batch["actions"], batch["is_pad"], self.cfg.loss, step=step)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at step {step} ({ {k: float(v) for k, v in terms.items()} }); "
                "lower optim.lr or use train.precision=fp32"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            terms["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {k: float(v) for k, v in terms.items()}

    @torch.no_grad()
    def _predict(
        self, batches: Iterable[list[int]], posterior: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Deployment-like chunks of validation samples -> predictions and targets in robot units (N, k, A),
        the valid mask (N, k) and, with `posterior`, what the latent carries: the predictions with z from the
        held-out chunk's posterior (its mean) instead of the prior (N, k, A), the KL per latent dimension (d_z,)
        and, with MCC, E_disc per batch."""
        preds, targets, valid, post, kl, disc = [], [], [], [], [], []
        for batch in self._loader(list(batches), self.val_set):
            batch = _batch_to(batch, self.device)
            out = self._forward(self.model, batch, None)  # not the DDP wrapper: rank 0 validates alone
            if posterior:
                q = self._forward(self.model, batch, None, posterior=True)
                post.append(self.stats.denormalise_action(q.actions.float().cpu().numpy()))
                kl.append(kl_per_dimension(q.mu.float(), q.logvar.float()).cpu().numpy())
                if q.disc_penalty is not None:
                    disc.append(float(q.disc_penalty))
            preds.append(self.stats.denormalise_action(out.actions.float().cpu().numpy()))
            targets.append(self.stats.denormalise_action(batch["actions"].cpu().numpy()))
            valid.append(~batch["is_pad"].cpu().numpy())
        latent = {"posterior": np.concatenate(post), "kl_per_dim": np.mean(kl, 0), "disc": disc} if post else {}
        return np.concatenate(preds), np.concatenate(targets), np.concatenate(valid), latent

    @torch.no_grad()
    def validate(self) -> dict[str, Any] | None:
        """Deployment-like validation: prior latent, no expert actions; action L1 in robot units + smoothness.
        `val_l1_start`: the same L1 over the chunks that start in each held-out episode's first k steps (the
        reach from the start pose, where only the scene and the instruction tell the motion, a few percent of
        all samples). What the CVAE latent carries: `val_l1_posterior`, the L1 with z encoded from the held-out
        chunk itself (a latent that carries the demonstration's motion lowers it), and `val_kl_per_dim` (KL of
        each latent dimension; ~0 everywhere: the posterior collapsed onto the prior). With MCC also E_disc of
        the held-out episodes' encoded latents (`val_disc`): how smooth the learned latent trajectory is where
        the encoder was not trained."""
        if self.val_set is None:
            return None
        self.model.eval()
        bs = self.cfg.optim.batch_size
        sampler = StepBatchSampler(len(self.val_set), bs, self.cfg.train.seed + 1, 0, self.cfg.train.val_batches, 0, 1)
        p, t, v, latent = self._predict(sampler)
        per_joint = per_joint_l1(p, t, v)
        smooth = mean_smoothness([c[m] for c, m in zip(p, v)])
        start = self.val_set.start_indices(self.cfg.model.chunk_size)
        ps, ts, vs, _ = self._predict((start[i : i + bs] for i in range(0, len(start), bs)), posterior=False)
        return {
            "val_l1": float(np.mean(per_joint)),
            "val_l1_start": float(np.mean(per_joint_l1(ps, ts, vs))),
            "val_l1_per_joint": per_joint,
            "val_l1_posterior": float(np.mean(per_joint_l1(latent["posterior"], t, v))),
            "val_kl_per_dim": [float(x) for x in latent["kl_per_dim"]],
            **{f"val_{k}": x for k, x in smooth.items()},
            **({"val_disc": float(np.mean(latent["disc"]))} if latent["disc"] else {}),
        }

    def run(self) -> TrainResult:
        cfg = self.cfg
        total = cfg.train.steps
        writer = None
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out / "config.yaml")
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.out / "tb"))
            except ImportError:
                log.warning("tensorboard is not installed; logging to metrics.jsonl only")
        if self.step == 0 and self.dist.main and self.val_set is not None:
            val0 = self.validate()
            self._record({"step": 0, **(val0 or {})}, writer)
        sampler = StepBatchSampler(
            len(self.train_set), cfg.optim.batch_size, cfg.train.seed, self.step, total, self.dist.rank, self.dist.world
        )
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        t0, samples, last_val = time.perf_counter(), 0, None
        for batch in self._loader(sampler, self.train_set):
            batch = _batch_to(batch, self.device)
            terms = self.train_step(batch, self.step)
            self.step += 1
            samples += batch["qpos"].shape[0] * self.dist.world
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{terms[k]:.3g}" for k in ("loss", "recon", "kl", "disc") if k in terms})
            if self.step % cfg.train.log_every == 0 or self.step == total:
                rate = samples / (time.perf_counter() - t0)
                self._record(
                    {
                        "step": self.step,
                        "lr": self.scheduler.get_last_lr()[0],
                        "samples_per_s": rate,
                        **{f"train_{k}": v for k, v in terms.items()},
                    },
                    writer,
                )
            if self.step % cfg.train.eval_every == 0 or self.step == total:
                if self.dist.main:
                    last_val = self.validate()
                    if last_val is not None:
                        self._record({"step": self.step, **last_val}, writer)
                        if last_val["val_l1"] < self.best_val:
                            self.best_val = last_val["val_l1"]
                            self.save("best", last_val, with_state=False)
            if self.step % cfg.train.save_every == 0 or self.step == total:
                self.save("latest", last_val, with_state=True)
        elapsed = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if self.dist.main:
            if self.val_set is None:  # nothing held out: the last weights are the best we know
                self.save("best", None, with_state=False)
            plot_history(self.history, self.out / "loss_curve.png")
        if self.dist.world > 1:
            dist.barrier()
        return TrainResult(self.out, self.step, self.best_val, self.history, samples / max(elapsed, 1e-9))

    def close(self) -> None:
        """Leave the process group: a gloo process that exits inside it can abort ("terminate called without an
        active exception") and take its peers down with it."""
        if self.dist.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def _record(self, row: dict[str, Any], writer: Any) -> None:
        if not self.dist.main:
            return
        self.history.append(row)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if writer is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    writer.add_scalar(k, v, row["step"])


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    """Loss terms and validation L1 against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("train_loss", "train_recon", "train_kl", "train_disc"):
        pts = [(r["step"], r[key]) for r in history if key in r]
        if pts:
            ax1.plot(*zip(*pts), label=key.removeprefix("train_"))
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_title("training loss terms")
    ax1.legend()
    for key, label in (
        ("val_l1", "all steps"),
        ("val_l1_start", "each episode's first k steps"),
        ("val_l1_posterior", "z from the held-out chunk's posterior"),
    ):
        pts = [(r["step"], r[key]) for r in history if key in r]
        if pts:
            ax2.plot(*zip(*pts), marker="o", label=label)
    if ax2.lines:
        ax2.legend()
    ax2.set_xlabel("step")
    ax2.set_title("held-out action L1 (robot units)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(
    cfg: CCoLConfig,
    data_dirs: list[str | Path],
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a policy; see `Trainer`."""
    trainer = Trainer(cfg, data_dirs, out_dir, device=device, resume=resume, progress=progress)
    try:
        return trainer.run()
    finally:
        trainer.close()
