"""What the paper's objective does when trained: E_disc shapes the latent trajectory, the paper preset learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from ccol_policy.config import load_config, resolve_preset
from ccol_policy.data import compute_norm_stats
from ccol_policy.training import Trainer, build_optimizer, train

from conftest import TINY, tiny_config

SHORT = {"train.steps": 80, "train.eval_every": 80, "optim.batch_size": 16, "optim.lr": 2e-3, "train.val_batches": 6}


def test_disc_penalty_makes_the_learned_latent_trajectory_smoother(synthetic_dir: Path, tmp_path: Path) -> None:
    """At equal data, steps and seed, the encoded latents of held-out episodes jump far less between the ODE
    grid's steps with E_disc than without it (Table 4's "w/o E_disc")."""
    val = {}
    for variant in ("full", "wo_disc"):
        result = train(tiny_config(variant, **SHORT), [synthetic_dir], tmp_path / variant, progress=False)
        val[variant] = result.history[-1]
    full, wo = val["full"]["val_disc"], val["wo_disc"]["val_disc"]
    assert full < 0.2 * wo, f"held-out E_disc: full {full:.3g}, wo_disc {wo:.3g}"
    rows = {
        k: {m: round(x, 5) for m, x in v.items() if m.startswith("val_") and isinstance(x, float)}
        for k, v in val.items()
    }
    assert val["full"]["val_l1"] < 1.5 * val["wo_disc"]["val_l1"], rows  # smoothness not bought with accuracy


def _paper_objective(**overrides: object):
    """The tiny network trained with the paper preset's optimiser and loss sections."""
    paper = yaml.safe_load(resolve_preset("paper_vit_b").read_text())
    return load_config(TINY, {"optim": paper["optim"], "loss": paper["loss"]}, overrides=overrides)


def test_paper_preset_objective_moves_the_validation_loss(synthetic_dir: Path, tmp_path: Path) -> None:
    cfg = _paper_objective(
        **{"train.steps": 200, "train.eval_every": 100, "train.val_batches": 6, "data.num_workers": 0}
    )
    assert (cfg.optim.optimizer, cfg.optim.lr, cfg.optim.batch_size) == ("sgd", 1e-5, 8)
    assert (cfg.loss.reduction, cfg.loss.kl_warmup_steps) == ("sum", 5000)
    result = train(cfg, [synthetic_dir], tmp_path, progress=False)
    curve = [r["val_l1"] for r in result.history if "val_l1" in r]
    assert len(curve) == 3 and curve[-1] < 0.97 * curve[0], curve


def test_weight_decay_spares_biases_and_norm_gains(tiny_cfg) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    tiny_cfg.optim.weight_decay = 0.1
    for optimizer in ("sgd", "adamw"):
        tiny_cfg.optim.optimizer = optimizer
        groups = build_optimizer(model, tiny_cfg).param_groups
        decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
        assert decayed == {id(model[0].weight)}
        assert sum(len(g["params"]) for g in groups) == 4


def test_normalisation_statistics_exclude_the_validation_episodes(synthetic_dir: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(), [synthetic_dir], tmp_path, progress=False)
    train_only = compute_norm_stats(trainer.train_set.infos)
    everything = compute_norm_stats(trainer.train_set.infos + trainer.val_set.infos)
    np.testing.assert_allclose(trainer.stats.action_mean, train_only.action_mean, rtol=1e-6)
    assert not np.allclose(trainer.stats.action_mean, everything.action_mean, rtol=1e-6)
