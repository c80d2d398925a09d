"""Proprioceptive CVAE encoder (paper: "Proprioceptive Encoder", eq. 4-5).

[CLS; qpos; expert action chunk] -> Transformer (or TCN) -> e[CLS] -> (mu, log sigma^2) -> z0.
At inference there is no expert chunk: z0 is the prior mean (zeros), as in ACT.
"""

from __future__ import annotations

import torch
from torch import nn

from ccol_policy.config import ModelConfig
from ccol_policy.model.common import sinusoidal_positions


class TemporalConvEncoder(nn.Module):
    """Non-causal dilated residual 1-D convolutions over the token sequence (Lea et al. 2017)."""

    def __init__(self, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(dim, dim, kernel_size=3, padding=2**i, dilation=2**i),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Conv1d(dim, dim, kernel_size=1),
            )
            for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(layers))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """x (B, S, D), pad (B, S) True = padding -> (B, S, D)."""
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        for block, norm in zip(self.blocks, self.norms):
            x = x * keep
            x = norm(x + block(x.transpose(1, 2)).transpose(1, 2))
        return x


class ProprioCVAE(nn.Module):
    """Posterior q(z | qpos, a_{t:t+k}) of the CVAE; returns mu and log sigma^2 from the [CLS] token (eq. 4)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        h = cfg.hidden_dim
        self.latent_dim = cfg.latent_dim
        self.cls = nn.Parameter(torch.zeros(1, 1, h))
        self.qpos_proj = nn.Linear(cfg.state_dim, h)
        self.action_proj = nn.Linear(cfg.action_dim, h)
        self.register_buffer("pos", sinusoidal_positions(cfg.chunk_size + 2, h).unsqueeze(0), persistent=False)
        if cfg.proprio_encoder == "tcn":
            self.encoder: nn.Module = TemporalConvEncoder(h, cfg.proprio_layers, cfg.dropout)
        else:
            layer = nn.TransformerEncoderLayer(h, cfg.num_heads, cfg.dim_feedforward, cfg.dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg.proprio_layers, enable_nested_tensor=False)
        self.kind = cfg.proprio_encoder
        self.to_mu = nn.Linear(h, cfg.latent_dim)  # W_mu, b_mu
        self.to_logvar = nn.Linear(h, cfg.latent_dim)  # W_sigma, b_sigma

    def forward(
        self, qpos: torch.Tensor, actions: torch.Tensor, is_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """qpos (B, state_dim), actions (B, k, A), is_pad (B, k) -> mu, logvar (B, latent_dim)."""
        b = qpos.shape[0]
        tokens = torch.cat(
            [self.cls.expand(b, -1, -1), self.qpos_proj(qpos).unsqueeze(1), self.action_proj(actions)], dim=1
        )  # (B, k + 2, h)
        tokens = tokens + self.pos[:, : tokens.shape[1]]
        pad = torch.cat([torch.zeros(b, 2, dtype=torch.bool, device=qpos.device), is_pad], dim=1)
        if self.kind == "tcn":
            out = self.encoder(tokens, pad)
        else:
            out = self.encoder(tokens, src_key_padding_mask=pad)
        e_cls = out[:, 0]
        return self.to_mu(e_cls), self.to_logvar(e_cls)

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """z0 = mu + eps * exp(logvar / 2) (eq. 5); eps ~ N(0, I) unless given."""
        eps = torch.randn_like(mu) if noise is None else noise.to(mu)
        return mu + eps * torch.exp(0.5 * logvar)
