"""The CCoL policy network: ODE-CVAE + semantic-physical alignment + chunk decoder (paper Fig. 1).

    images --ViT--> x --ReLU(W_v x)--------------------------.
    qpos, a_{t:t+k} --ProprioCVAE--> mu, logvar --> z0         |-- X = (z~, qpos~, x~)
    z0 --LatentODE--> Z --ReLU(W_a Z)--> z~ -----------------'        |
    instruction --RoBERTa (cached)--> l --ReLU(W_l l)--> l~ ----- CSA(l~, X) --> memory --decoder--> a'_{t:t+k}

With MCC off, z0 itself is the single latent token; with CSA off, a plain self-attention encoder fuses
[l~; X] (together: an ACT-style CVAE with language conditioning, the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ccol_policy.config import CCoLConfig
from ccol_policy.model.alignment import AlignmentAttention, SemanticPhysicalAlignment
from ccol_policy.model.common import sinusoidal_positions
from ccol_policy.model.latent_ode import LatentODE
from ccol_policy.model.proprio_cvae import ProprioCVAE
from ccol_policy.model.vision import VisionEncoder


@dataclass
class CCoLOutput:
    actions: torch.Tensor  # (B, k, action_dim), normalised units
    mu: torch.Tensor  # (B, d_z)
    logvar: torch.Tensor  # (B, d_z)
    latent: torch.Tensor  # (B, T, d_z): the ODE trajectory Z (T = 1 without MCC)
    disc_penalty: torch.Tensor | None  # E_disc, only when trained with MCC
    attention: list[AlignmentAttention] = field(default_factory=list)


@dataclass(frozen=True)
class TokenLayout:
    """Where each kind of token sits in the context X (for reading attention maps)."""

    latent: slice
    qpos: int
    vision: slice
    cameras: int
    patches_per_camera: int
    patch_grid: int  # patches per image side


class CCoL(nn.Module):
    """The policy network. Works in normalised units; `CCoLPolicy` handles robot units and caching."""

    def __init__(self, cfg: CCoLConfig, text_dim: int) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        m = cfg.model
        h = m.hidden_dim
        self.vision = VisionEncoder(cfg.vision, condition_dim=text_dim if cfg.vision.keypoints else 0)
        self.proprio = ProprioCVAE(m)
        self.ode = LatentODE(m.latent_dim, m.ode) if m.use_mcc else None
        # eq. 7: projections into the shared space h
        self.proj_vision = nn.Sequential(nn.Linear(self.vision.out_dim, h), nn.ReLU())
        self.proj_lang = nn.Sequential(nn.Linear(text_dim, h), nn.ReLU())
        self.proj_latent = nn.Sequential(nn.Linear(m.latent_dim, h), nn.ReLU())
        self.proj_qpos = nn.Linear(m.state_dim, h)
        n_cam = len(cfg.vision.cameras)
        self.camera_embed = nn.Parameter(torch.zeros(n_cam, 1, h))
        n_latent = m.ode.time_points if m.use_mcc else 1
        per_cam = self.vision.tokens_per_camera
        self.layout = TokenLayout(
            latent=slice(0, n_latent),
            qpos=n_latent,
            vision=slice(n_latent + 1, n_latent + 1 + n_cam * per_cam),
            cameras=n_cam,
            patches_per_camera=per_cam,
            patch_grid=cfg.vision.image_size // cfg.vision.patch_size,
        )
        self.max_lang = cfg.text.max_length
        n_ctx = self.layout.vision.stop
        self.register_buffer("pos", sinusoidal_positions(self.max_lang + n_ctx, h), persistent=False)
        if m.use_csa:
            self.fusion: nn.Module = SemanticPhysicalAlignment(
                h, m.num_heads, m.dim_feedforward, m.dropout, m.fusion_layers, m.csa_mode
            )
        else:
            layer = nn.TransformerEncoderLayer(h, m.num_heads, m.dim_feedforward, m.dropout, batch_first=True)
            self.fusion = nn.TransformerEncoder(layer, m.fusion_layers, enable_nested_tensor=False)
        self.queries = nn.Parameter(torch.randn(m.chunk_size, h) * 0.02)
        dec_layer = nn.TransformerDecoderLayer(h, m.num_heads, m.dim_feedforward, m.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(dec_layer, m.decoder_layers)
        self.action_head = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, m.action_dim))
        self._prior_cache: tuple[tuple, torch.Tensor] | None = None

    def _prior_latent(self, batch: int, device: torch.device) -> torch.Tensor:
        """Latent trajectory from the prior mean z0 = 0: a constant of the weights, solved once and cached."""
        z0 = torch.zeros(1, self.cfg.model.latent_dim, device=device)
        if self.ode is None:
            return z0.unsqueeze(1).expand(batch, -1, -1)
        key = (
            device,
            tuple(p._version for p in self.ode.parameters()),
            tuple(p.data_ptr() for p in self.ode.parameters()),
        )
        if self._prior_cache is None or self._prior_cache[0] != key:
            with torch.no_grad():
                self._prior_cache = (key, self.ode(z0))
        return self._prior_cache[1].expand(batch, -1, -1)

    def _observed_latents(
        self, z0: torch.Tensor, future: tuple[torch.Tensor, torch.Tensor, torch.Tensor], noise: torch.Tensor | None
    ) -> torch.Tensor:
        """The posterior latents of the steps on the ODE grid, z0 first -> (B, T, d_z).

        The later steps use the same epsilon as z0, so the trajectory moves only where the encoded
        proprioceptive state moves."""
        q, a, pad = future  # (B, T-1, S), (B, T-1, k, A), (B, T-1, k)
        b, n = q.shape[:2]
        mu, logvar = self.proprio(q.flatten(0, 1), a.flatten(0, 1), pad.flatten(0, 1))  # (B * (T-1), d_z)
        if self.training:
            eps = noise.repeat_interleave(n, 0) if noise is not None else None
            z = ProprioCVAE.reparameterise(mu, logvar, eps)
        else:
            z = mu
        return torch.cat([z0.unsqueeze(1), z.view(b, n, -1)], 1)

    def encode_vision(
        self, images: torch.Tensor, lang: torch.Tensor, lang_pad: torch.Tensor, depth: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The visual tokens in the shared space: (B, n_cam, 3, H, W) uint8 (+ the instruction, which conditions the
        keypoint token) -> (B, n_cam * P, h). Depends on nothing else, so a frame's tokens can be reused."""
        condition = None
        if self.cfg.vision.keypoints:  # the instruction, mean over its tokens, conditions the keypoint token
            keep = (~lang_pad[:, : self.max_lang]).unsqueeze(-1).to(lang.dtype)
            condition = (lang[:, : self.max_lang] * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, d_l)
        vis = self.proj_vision(self.vision(images, depth, condition))  # (B, n_cam * P, h)
        return (vis.view(images.shape[0], self.layout.cameras, -1, vis.shape[-1]) + self.camera_embed).flatten(1, 2)

    def forward(
        self,
        images: torch.Tensor | None,
        qpos: torch.Tensor,
        lang: torch.Tensor,
        lang_pad: torch.Tensor,
        depth: torch.Tensor | None = None,
        actions: torch.Tensor | None = None,
        is_pad: torch.Tensor | None = None,
        need_weights: bool = False,
        noise: torch.Tensor | None = None,
        future: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        vision_tokens: torch.Tensor | None = None,
    ) -> CCoLOutput:
        """images (B, n_cam, 3, H, W) uint8, qpos (B, state_dim), lang (B, L, d_l), lang_pad (B, L) True = pad,
        actions (B, k, A) and is_pad (B, k) in training only; noise (B, d_z) is the reparameterisation's epsilon
        (drawn here when None; the trainer passes it so that runs are reproducible across ranks); future: the
        proprioception at the ODE grid's later times, (qpos (B, T-1, S), actions (B, T-1, k, A), is_pad
        (B, T-1, k)), whose encoded latents E_disc compares with the vector field; vision_tokens: what
        `encode_vision` returned for these images and this instruction (images are then not read) -> CCoLOutput."""
        b = qpos.shape[0]
        disc = None
        if actions is not None:
            if is_pad is None:
                is_pad = torch.zeros(actions.shape[:2], dtype=torch.bool, device=actions.device)
            if noise is None and self.training:
                noise = torch.randn(b, self.cfg.model.latent_dim, device=qpos.device)
            mu, logvar = self.proprio(qpos, actions, is_pad)
            z0 = ProprioCVAE.reparameterise(mu, logvar, noise) if self.training else mu
            if self.ode is not None:
                latent = self.ode(z0)  # (B, T, d_z)
                if future is not None:
                    steps = [0, *self.cfg.model.ode.grid_offsets()]  # control periods: the samples' times
                    times = torch.tensor(steps, dtype=torch.float32, device=z0.device)
                    disc = self.ode.disc_penalty(self._observed_latents(z0, future, noise), times)
            else:
                latent = z0.unsqueeze(1)
        else:
            mu = logvar = torch.zeros(b, self.cfg.model.latent_dim, device=qpos.device)
            latent = self._prior_latent(b, qpos.device)

        vis = self.encode_vision(images, lang, lang_pad, depth) if vision_tokens is None else vision_tokens
        ctx = torch.cat([self.proj_latent(latent.to(vis.dtype)), self.proj_qpos(qpos).unsqueeze(1), vis], 1)
        lang = self.proj_lang(lang[:, : self.max_lang])
        lang_pad = lang_pad[:, : self.max_lang]
        n_lang = lang.shape[1]
        pos = torch.cat([self.pos[:n_lang], self.pos[self.max_lang :]], 0)  # (L + N, h)
        attention: list[AlignmentAttention] = []
        mem_pad = torch.cat([lang_pad, torch.zeros(ctx.shape[:2], dtype=torch.bool, device=ctx.device)], 1)
        if self.cfg.model.use_csa:
            memory, attention = self.fusion(lang, lang_pad, ctx, pos, need_weights)
        else:
            memory = self.fusion(torch.cat([lang, ctx], 1) + pos, src_key_padding_mask=mem_pad)
        out = self.decoder(self.queries.expand(b, -1, -1), memory, memory_key_padding_mask=mem_pad)
        return CCoLOutput(
            actions=self.action_head(out), mu=mu, logvar=logvar, latent=latent, disc_penalty=disc, attention=attention
        )
