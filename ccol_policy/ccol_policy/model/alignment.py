"""Cross-modal semantic-physical alignment (CSA), paper eq. 8-11.

Language tokens l~ (L) and the joint vision-proprioceptive context X = (x~, z~) (N tokens) attend to each other
(bidirectional cross-attention, eq. 8-9); the fused tokens then pass a positional self-attention whose weights
come from the position encodings alone (eq. 10), a residual + dropout + LayerNorm (eq. 11) and a feed-forward
block. The ablation "CSA_no att" replaces the cross-attention by average pooling of the other modality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AlignmentAttention:
    """Head-averaged CSA attention of one block."""

    lang_to_context: torch.Tensor  # (B, L, N): F(l, X), each word over vision+proprio tokens
    context_to_lang: torch.Tensor  # (B, N, L): F(X, l), each vision/proprio token over words


class PositionalSelfAttention(nn.Module):
    """xi = softmax((W_q pos)(W_k pos)^T / sqrt(d_k)) W_v F~ (eq. 10): attention weights from positions only."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.d_k = dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, fused: torch.Tensor, pos: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """fused (B, S, h), pos (S, h), pad (B, S) True = padding -> (B, S, h)."""
        b, s, h = fused.shape
        q = self.q(pos).view(s, self.heads, self.d_k).transpose(0, 1)  # (H, S, d_k)
        k = self.k(pos).view(s, self.heads, self.d_k).transpose(0, 1)
        scores = (q @ k.transpose(1, 2) / math.sqrt(self.d_k)).unsqueeze(0)  # (1, H, S, S)
        if pad is not None:
            scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)  # (B or 1, H, S, S)
        v = self.v(fused).view(b, s, self.heads, self.d_k).transpose(1, 2)  # (B, H, S, d_k)
        return self.out((weights @ v).transpose(1, 2).reshape(b, s, h))


class SemanticPhysicalAlignmentBlock(nn.Module):
    """One CSA block: bidirectional cross-attention, positional self-attention, feed-forward."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "attention":
            self.lang_to_ctx = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
            self.ctx_to_lang = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_cross = nn.LayerNorm(dim)
        self.pos_attn = PositionalSelfAttention(dim, heads)
        self.norm_pos = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff, dim))
        self.norm_ff = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        lang: torch.Tensor,
        lang_pad: torch.Tensor,
        ctx: torch.Tensor,
        pos: torch.Tensor,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, AlignmentAttention | None]:
        """lang (B, L, h), lang_pad (B, L), ctx (B, N, h), pos (L + N, h) -> lang', ctx', attention."""
        attention = None
        if self.mode == "attention":
            # F(l, X) X: each word gathers the vision/proprio tokens it refers to (eq. 8-9).
            lang_ctx, w_lx = self.lang_to_ctx(lang, ctx, ctx, need_weights=need_weights)
            # F(X, l) l: each vision/proprio token gathers the words relevant to it.
            ctx_lang, w_xl = self.ctx_to_lang(ctx, lang, lang, key_padding_mask=lang_pad, need_weights=need_weights)
            if need_weights:
                attention = AlignmentAttention(lang_to_context=w_lx, context_to_lang=w_xl)
        else:  # "CSA_no att": average pooling of the other modality, broadcast over the tokens
            keep = (~lang_pad).unsqueeze(-1).to(lang.dtype)
            lang_mean = (lang * keep).sum(1, keepdim=True) / keep.sum(1, keepdim=True).clamp(min=1.0)
            lang_ctx = ctx.mean(1, keepdim=True).expand_as(lang)
            ctx_lang = lang_mean.expand_as(ctx)
        fused = self.norm_cross(torch.cat([lang, ctx], 1) + self.dropout(torch.cat([lang_ctx, ctx_lang], 1)))
        pad = torch.cat([lang_pad, torch.zeros(ctx.shape[:2], dtype=torch.bool, device=ctx.device)], 1)
        xi = self.pos_attn(fused, pos, pad)
        fused = self.norm_pos(fused + self.dropout(xi))  # eq. 11
        fused = self.norm_ff(fused + self.dropout(self.ff(fused)))
        n_lang = lang.shape[1]
        return fused[:, :n_lang], fused[:, n_lang:], attention


class SemanticPhysicalAlignment(nn.Module):
    """A stack of CSA blocks; returns the fused memory (B, L + N, h) for the action decoder."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float, layers: int, mode: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SemanticPhysicalAlignmentBlock(dim, heads, ff, dropout, mode) for _ in range(layers)
        )

    def forward(
        self, lang: torch.Tensor, lang_pad: torch.Tensor, ctx: torch.Tensor, pos: torch.Tensor, need_weights: bool
    ) -> tuple[torch.Tensor, list[AlignmentAttention]]:
        attentions = []
        for block in self.blocks:
            lang, ctx, attention = block(lang, lang_pad, ctx, pos, need_weights)
            if attention is not None:
                attentions.append(attention)
        return torch.cat([lang, ctx], 1), attentions
