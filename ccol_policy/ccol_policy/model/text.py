"""Instruction encoder (paper: "Text Encoder"): RoBERTa token embeddings of the instruction, computed once."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import torch
from torch import nn

from ccol_policy.config import TextConfig

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9]+")
# RoBERTa's special-token ids, kept for the from-scratch word vocabulary.
BOS, PAD, EOS, UNK = 0, 1, 2, 3


def split_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def build_vocab(instructions: list[str]) -> list[str]:
    """Sorted word vocabulary of a set of instructions (for a from-scratch text encoder)."""
    return sorted({w for text in instructions for w in split_words(text)})


@dataclass
class InstructionEmbedding:
    """Token-level embedding of one instruction."""

    text: str
    tokens: torch.Tensor  # (L, d_l)
    words: list[str]  # one label per token, for attention maps
    unknown_words: list[str]


class InstructionEncoder(nn.Module):
    """Frozen RoBERTa. `embed` caches per instruction, so a control loop never re-encodes the same text."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        from transformers import RobertaConfig, RobertaModel

        self.cfg = cfg
        self._tokenizer = None
        if cfg.pretrained:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(cfg.pretrained)
                self.roberta = RobertaModel.from_pretrained(cfg.pretrained, add_pooling_layer=False)
            except OSError as exc:
                raise FileNotFoundError(
                    f"cannot load RoBERTa {cfg.pretrained!r} (no network, or not in the Hugging Face cache). "
                    f"Download it once (`huggingface-cli download {cfg.pretrained} --local-dir DIR`) and set "
                    "text.pretrained=DIR."
                ) from exc
        else:
            if not cfg.vocab:
                raise ValueError("a from-scratch text encoder needs text.vocab (built from the training instructions)")
            self._word_ids = {w: i + 4 for i, w in enumerate(cfg.vocab)}
            rcfg = RobertaConfig(
                vocab_size=len(cfg.vocab) + 4,
                hidden_size=cfg.hidden_size,
                num_hidden_layers=cfg.num_layers,
                num_attention_heads=cfg.num_heads,
                intermediate_size=cfg.intermediate_size,
                max_position_embeddings=cfg.max_length + 2,
                bos_token_id=BOS,
                pad_token_id=PAD,
                eos_token_id=EOS,
            )
            self.roberta = RobertaModel(rcfg, add_pooling_layer=False)
        self.roberta.requires_grad_(False)
        self.roberta.eval()
        self.out_dim = self.roberta.config.hidden_size
        self._cache: dict[str, InstructionEmbedding] = {}

    def train(self, mode: bool = True) -> InstructionEncoder:  # always frozen, always in eval mode
        return super().train(False)

    def _tokenize(self, text: str) -> tuple[list[int], list[str], list[str]]:
        if self._tokenizer is not None:
            enc = self._tokenizer(text, truncation=True, max_length=self.cfg.max_length)
            ids = list(enc["input_ids"])
            words = [self._tokenizer.decode([i]).strip() or "·" for i in ids]
            return ids, words, []
        words = split_words(text)[: self.cfg.max_length - 2]
        unknown = [w for w in words if w not in self._word_ids]
        ids = [BOS] + [self._word_ids.get(w, UNK) for w in words] + [EOS]
        return ids, ["<s>"] + words + ["</s>"], unknown

    @torch.no_grad()
    def embed(self, text: str) -> InstructionEmbedding:
        """Token embeddings (L, d_l) of one instruction, cached."""
        text = text.strip()
        if not text:
            raise ValueError("instruction is empty: give the task in words, e.g. 'lift the pen'")
        if text in self._cache:
            return self._cache[text]
        ids, words, unknown = self._tokenize(text)
        if unknown:
            log.warning("instruction %r has words the policy never saw in training: %s", text, unknown)
        device = next(self.roberta.parameters()).device
        input_ids = torch.tensor([ids], device=device)
        tokens = self.roberta(input_ids=input_ids).last_hidden_state[0]
        emb = InstructionEmbedding(text=text, tokens=tokens, words=words, unknown_words=unknown)
        self._cache[text] = emb
        return emb

    def batch(self, texts: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached embeddings of several instructions, padded: tokens (B, L, d_l), pad mask (B, L) True = padding."""
        embs = [self.embed(t) for t in texts]
        length = max(e.tokens.shape[0] for e in embs)
        tokens = torch.zeros(len(embs), length, self.out_dim, device=device)
        pad = torch.ones(len(embs), length, dtype=torch.bool, device=device)
        for i, e in enumerate(embs):
            n = e.tokens.shape[0]
            tokens[i, :n] = e.tokens.to(device)
            pad[i, :n] = False
        return tokens, pad

    def clear_cache(self) -> None:
        self._cache.clear()
