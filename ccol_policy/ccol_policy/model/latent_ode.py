"""Multimodal continuous co-learning (MCC): the NeuralODE that evolves the CVAE latent (paper eq. 6, 13)."""

from __future__ import annotations

import torch
from torch import nn
from torchdiffeq import odeint, odeint_adjoint

from ccol_policy.config import ODEConfig

FIXED_GRID = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")


class ResidualVectorField(nn.Module):
    """f(z, t; psi): a residual MLP giving dz/dt."""

    def __init__(self, latent_dim: int, hidden: int, blocks: int) -> None:
        super().__init__()
        self.inp = nn.Linear(latent_dim + 1, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(blocks)
        )
        self.out = nn.Linear(hidden, latent_dim)
        nn.init.normal_(self.out.weight, std=1e-3)  # start near the identity flow: z(t) ~ z0
        nn.init.zeros_(self.out.bias)
        self.nfe = 0  # number of function evaluations since the last reset

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        x = self.inp(torch.cat([z, t.expand(z.shape[0], 1).to(z.dtype)], dim=-1))
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class LatentODE(nn.Module):
    """z0 -> Z = odeint(f, z0, t) on the configured time grid, and the discontinuity penalty E_disc."""

    def __init__(self, latent_dim: int, cfg: ODEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.func = ResidualVectorField(latent_dim, cfg.hidden_size, cfg.num_blocks)
        self.register_buffer("times", torch.arange(cfg.time_points, dtype=torch.float32) * cfg.step, persistent=False)

    def forward(self, z0: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """z0 (B, d_z) -> latent trajectory (B, T, d_z) at `times` (default: the configured grid)."""
        t = self.times if times is None else times.to(z0.device)
        solve = odeint_adjoint if self.cfg.adjoint else odeint
        # The solver's step-size control runs in float32 even under autocast.
        with torch.autocast(device_type=z0.device.type, enabled=False):
            options = (
                {"step_size": self.cfg.step_size} if self.cfg.step_size and self.cfg.solver in FIXED_GRID else None
            )
            traj = solve(
                self.func,
                z0.float(),
                t,
                method=self.cfg.solver,
                rtol=self.cfg.rtol,
                atol=self.cfg.atol,
                options=options,
            )
        return traj.transpose(0, 1)  # (T, B, d_z) -> (B, T, d_z)

    def disc_penalty(self, observed: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """E_disc (eq. 13): || dz/dt - f(z, t) ||^2 integrated over the grid.

        `observed` (B, T, d_z) are the latents the proprioceptive encoder gives at the grid's time points (the
        current step and the steps `step` control periods later, see `CCoL`), not the ODE's own solution (for
        which the residual is zero up to solver error). dz/dt is their finite difference, f is compared at both
        ends of each interval (trapezoid rule): the penalty is large when the encoded latent jumps between
        nearby steps or moves against the learned field, and it trains f to follow the encoded dynamics.
        """
        t = self.times if times is None else times.to(observed.device)
        dt = (t[1:] - t[:-1]).view(1, -1, 1)  # (1, T-1, 1)
        rate = (observed[:, 1:] - observed[:, :-1]) / dt  # (B, T-1, d_z)
        b, n, d = observed.shape
        f = self.func(t.repeat_interleave(b).unsqueeze(-1), observed.transpose(0, 1).reshape(n * b, d).float())
        f = f.view(n, b, d).transpose(0, 1)  # (B, T, d_z)
        residual = rate - 0.5 * (f[:, 1:] + f[:, :-1])
        return (residual.pow(2).sum(-1) * dt.squeeze(-1)).sum(-1).mean()
