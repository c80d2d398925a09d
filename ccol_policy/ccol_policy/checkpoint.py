"""Checkpoint directories: everything needed to run a policy, written atomically.

model.safetensors         CCoL weights
text_encoder.safetensors  RoBERTa weights, only for a from-scratch text encoder
config.yaml               the full CCoLConfig
norm_stats.json           normalisation statistics
text_encoder.json         text-encoder identity (hub name / directory, or "scratch" with its size)
instructions.json         instructions seen in training
meta.json                 training metadata (step, dataset hash, validation metrics)
README.md                 model card written by the trainer
train_state.pt            optimizer/scheduler/RNG state (in `latest/` only, for --resume)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from ccol_policy.config import CCoLConfig, config_from_dict
from ccol_policy.data import NormStats
from ccol_policy.model import CCoL, InstructionEncoder

TRAIN_STATE = "train_state.pt"  # optimizer, scheduler, step and RNG states for `ccol train --resume`
REQUIRED = ("model.safetensors", "config.yaml", "norm_stats.json", "text_encoder.json")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message says what is missing or differs."""


@dataclass
class Checkpoint:
    model: CCoL
    text: InstructionEncoder
    config: CCoLConfig
    stats: NormStats
    instructions: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _text_identity(cfg: CCoLConfig, text: InstructionEncoder) -> dict[str, Any]:
    return {
        "pretrained": cfg.text.pretrained,
        "kind": "pretrained" if cfg.text.pretrained else "scratch",
        "hidden_size": text.out_dim,
        "vocab_size": text.roberta.config.vocab_size,
    }


def save_checkpoint(
    directory: str | Path,
    model: CCoL,
    text: InstructionEncoder,
    cfg: CCoLConfig,
    stats: NormStats,
    instructions: list[str],
    meta: dict[str, Any] | None = None,
    extra_files: dict[str, str] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically: a crash mid-write leaves the previous checkpoint intact."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, tmp / "model.safetensors")
    if not cfg.text.pretrained:
        save_file(
            {k: v.contiguous().cpu() for k, v in text.roberta.state_dict().items()}, tmp / "text_encoder.safetensors"
        )
    cfg.save(tmp / "config.yaml")
    stats.save(tmp / "norm_stats.json")
    (tmp / "text_encoder.json").write_text(json.dumps(_text_identity(cfg, text), indent=1))
    (tmp / "instructions.json").write_text(json.dumps(instructions, indent=1))
    (tmp / "meta.json").write_text(json.dumps(meta or {}, indent=1, default=str))
    for name, content in (extra_files or {}).items():
        (tmp / name).write_text(content)
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        if old.exists():
            shutil.rmtree(old)
        directory.rename(old)
    tmp.rename(directory)
    if old.exists():
        shutil.rmtree(old)
    return directory


def _shape_differences(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    diffs = [f"missing weight {k} {tuple(v.shape)}" for k, v in expected.items() if k not in found]
    diffs += [f"unexpected weight {k} {tuple(v.shape)}" for k, v in found.items() if k not in expected]
    diffs += [
        f"{k}: config gives {tuple(v.shape)}, checkpoint has {tuple(found[k].shape)}"
        for k, v in expected.items()
        if k in found and tuple(v.shape) != tuple(found[k].shape)
    ]
    return diffs


def _config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _config_differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: checkpoint has {va!r}, expected {vb!r}")
    return out


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu", expect: dict[str, Any] | None = None
) -> Checkpoint:
    """Load a checkpoint. `expect` (dotted keys, e.g. {"model.action_dim": 8}) must match its config."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist; train one with `ccol train`")
    missing = [name for name in REQUIRED if not (directory / name).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint {directory} is incomplete: missing {missing}")
    raw = yaml.safe_load((directory / "config.yaml").read_text())
    cfg = config_from_dict(raw)
    if expect:
        nested: dict[str, Any] = {}
        flat_cfg = cfg.to_dict()
        for dotted, value in expect.items():
            node = flat_cfg
            for part in dotted.split("."):
                node = node.get(part, {}) if isinstance(node, dict) else {}
            if node != value:
                nested[dotted] = (node, value)
        if nested:
            detail = "; ".join(f"{k}: checkpoint has {a!r}, expected {b!r}" for k, (a, b) in nested.items())
            raise CheckpointError(f"checkpoint {directory} does not fit: {detail}")
    identity = json.loads((directory / "text_encoder.json").read_text())
    if identity.get("pretrained") != cfg.text.pretrained:
        raise CheckpointError(
            f"text_encoder.json names {identity.get('pretrained')!r} but config.yaml has text.pretrained="
            f"{cfg.text.pretrained!r}"
        )
    text = InstructionEncoder(cfg.text)
    if not cfg.text.pretrained:
        text_path = directory / "text_encoder.safetensors"
        if not text_path.is_file():
            raise CheckpointError(f"checkpoint {directory} has a from-scratch text encoder but no {text_path.name}")
        text_state = load_file(text_path)
        diffs = _shape_differences(text.roberta.state_dict(), text_state)
        if diffs:
            raise CheckpointError(f"text encoder in {directory} does not match its config: " + "; ".join(diffs[:10]))
        text.roberta.load_state_dict(text_state)
    model = CCoL(cfg, text.out_dim)
    state = load_file(directory / "model.safetensors")
    diffs = _shape_differences(model.state_dict(), state)
    if diffs:
        raise CheckpointError(
            f"weights in {directory} do not match config.yaml ({len(diffs)} differences): " + "; ".join(diffs[:10])
        )
    model.load_state_dict(state)
    stats = NormStats.load(directory / "norm_stats.json")
    stats.check_dims(cfg.model.state_dim, cfg.model.action_dim)
    instructions_path = directory / "instructions.json"
    instructions = json.loads(instructions_path.read_text()) if instructions_path.is_file() else []
    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    model.to(device).eval()
    text.to(device)
    return Checkpoint(model=model, text=text, config=cfg, stats=stats, instructions=instructions, meta=meta)


def compare_configs(a: CCoLConfig, b: CCoLConfig) -> list[str]:
    """Human-readable differences between two configs."""
    return _config_differences(a.to_dict(), b.to_dict())
