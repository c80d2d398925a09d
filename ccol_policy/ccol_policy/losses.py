"""Training objective of CCoL (paper eq. 12-14): reconstruction + beta * KL + lambda * E_disc."""

from __future__ import annotations

import torch

from ccol_policy.config import LossConfig
from ccol_policy.model.ccol import CCoLOutput


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|.) || N(0, I)) of each latent dimension, averaged over the batch: (d_z,). A dimension whose KL stays
    near 0 carries nothing (its posterior is the prior whatever the demonstration)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(0)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|.) || N(0, I)), summed over latent dimensions and averaged over the batch."""
    return kl_per_dimension(mu, logvar).sum()


def reconstruction_loss(
    pred: torch.Tensor, target: torch.Tensor, is_pad: torch.Tensor, kind: str, reduction: str = "mean"
) -> torch.Tensor:
    """L1 or L2 error with padded steps zeroed, averaged over all B * k * A entries (as ACT does), or with
    reduction "sum" summed over the chunk's k * A entries and averaged over the batch (the paper's eq. 3).

    The normaliser does not depend on the padding, so the mean of per-rank losses under DDP equals the loss of
    the whole batch. pred/target (B, k, A), is_pad (B, k).
    """
    err = (pred - target).abs() if kind == "l1" else (pred - target).pow(2)
    err = err * (~is_pad).unsqueeze(-1).to(err.dtype)
    return err.sum((1, 2)).mean() if reduction == "sum" else err.mean()


def ccol_loss(
    out: CCoLOutput,
    actions: torch.Tensor,
    is_pad: torch.Tensor,
    cfg: LossConfig,
    step: int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and each term separately, detached (read them with .item() only when logging).
    `step` (training) ramps the KL weight over `kl_warmup_steps`."""
    recon = reconstruction_loss(out.actions.float(), actions, is_pad, cfg.recon, cfg.reduction)
    kl = kl_divergence(out.mu.float(), out.logvar.float())
    beta = cfg.kl_weight
    if cfg.kl_warmup_steps and step is not None:
        beta *= min(1.0, step / cfg.kl_warmup_steps)
    total = recon + beta * kl
    terms = {"recon": recon.detach(), "kl": kl.detach()}
    if out.disc_penalty is not None:
        terms["disc"] = out.disc_penalty.detach()
        if cfg.disc_weight > 0:
            total = total + cfg.disc_weight * out.disc_penalty
    terms["loss"] = total.detach()
    return total, terms
