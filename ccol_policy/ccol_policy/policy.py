"""Inference API: one call from an RGB(-D) frame, a joint-state vector and an instruction to an action chunk.

`CCoLPolicy` owns what the `nn.Module` does not: normalisation, the cached instruction embedding, input
validation and device placement. ACT's temporal ensembling (`TemporalEnsembler`) lives with the executor in
`ccol_policy.control`, which imports no torch.
The ROS policy node, `ccol sim-eval` and `ccol eval-bag` all go through `CCoLPolicy.predict_chunk`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ccol_policy.checkpoint import Checkpoint, load_checkpoint
from ccol_policy.control import ObservationError
from ccol_policy.model.alignment import AlignmentAttention

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """'auto': CUDA when available, else the CPU; otherwise the named device, which must exist. The one place
    (policy, training, sim-eval) that turns a --device/device:= string into a torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device:=cpu or auto")
    return torch.device(device)


class CCoLPolicy:
    """A loaded checkpoint ready for closed-loop control."""

    def __init__(self, ckpt: Checkpoint, device: torch.device, half: bool = False) -> None:
        self.ckpt = ckpt
        self.cfg = ckpt.config
        self.device = device
        self.model = ckpt.model.to(device).eval()
        self.text = ckpt.text.to(device)
        self.dtype = torch.float16 if half and device.type == "cuda" else torch.float32
        s = ckpt.stats
        self._qpos_mean = torch.tensor(s.qpos_mean, device=device)
        self._qpos_std = torch.tensor(s.qpos_std, device=device)
        self._act_mean = torch.tensor(s.action_mean, device=device)
        self._act_std = torch.tensor(s.action_std, device=device)
        self.cameras = list(self.cfg.vision.cameras)
        self.instruction: str | None = None
        self._lang: torch.Tensor | None = None
        self._lang_pad: torch.Tensor | None = None
        self.last_attention: list[AlignmentAttention] = []
        self.last_words: list[str] = []
        self._vision_cache: tuple[object, torch.Tensor, torch.Tensor] | None = None  # (frame_key, lang, tokens)

    @classmethod
    def from_checkpoint(cls, directory: str | Path, device: str = "auto", half: bool = False) -> CCoLPolicy:
        dev = resolve_device(device)
        return cls(load_checkpoint(directory, dev), dev, half=half)

    @property
    def chunk_size(self) -> int:
        return self.cfg.model.chunk_size

    @property
    def state_dim(self) -> int:
        return self.cfg.model.state_dim

    def set_instruction(self, text: str) -> list[str]:
        """Embed an instruction once; later calls reuse it. Returns words the policy never saw in training."""
        emb = self.text.embed(text)
        self._lang = emb.tokens.unsqueeze(0).to(self.device)
        self._lang_pad = torch.zeros(1, emb.tokens.shape[0], dtype=torch.bool, device=self.device)
        self.instruction = emb.text
        self.last_words = emb.words
        if emb.text not in self.ckpt.instructions and self.ckpt.instructions:
            log.warning("instruction %r was not among the training instructions %s", emb.text, self.ckpt.instructions)
        return emb.unknown_words

    def validate(
        self, images: dict[str, np.ndarray], qpos: np.ndarray, depth: dict[str, np.ndarray] | None = None
    ) -> None:
        """Raise ObservationError naming the field for anything the policy must not act on."""
        qpos = np.asarray(qpos)
        if qpos.shape != (self.state_dim,):
            raise ObservationError(f"qpos: expected {self.state_dim} values, got shape {qpos.shape}")
        if not np.isfinite(qpos).all():
            raise ObservationError(f"qpos: contains NaN or inf ({qpos.tolist()})")
        for cam in self.cameras:
            if cam not in images:
                raise ObservationError(f"images: camera {cam!r} missing (have {sorted(images)})")
            img = images[cam]
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
                dtype = getattr(img, "dtype", type(img).__name__)
                raise ObservationError(f"images[{cam!r}]: expected uint8 RGB, got {dtype}")
            if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 8:
                raise ObservationError(f"images[{cam!r}]: expected (H, W, 3) RGB, got shape {img.shape}")
            if self.cfg.vision.use_depth:
                d = (depth or {}).get(cam)
                if d is None:
                    raise ObservationError(f"depth[{cam!r}]: this policy uses depth but none was given")
                if d.shape[:2] != img.shape[:2]:
                    raise ObservationError(f"depth[{cam!r}]: shape {d.shape} does not match colour {img.shape[:2]}")

    @torch.inference_mode()
    def predict_chunk(
        self,
        images: dict[str, np.ndarray] | np.ndarray,
        qpos: np.ndarray,
        instruction: str | None = None,
        depth: dict[str, np.ndarray] | None = None,
        need_attention: bool = False,
        frame_key: object | None = None,
    ) -> np.ndarray:
        """RGB frame(s) (H, W, 3) uint8 per camera, joint state (state_dim,) in robot units, instruction ->
        action chunk (k, action_dim) in robot units. Depth in metres (H, W) float when the policy uses it.

        frame_key: an object standing for these frames (the node passes the image message). When the same object
        (identity, not equality) comes again with the same instruction, the frames' visual tokens of the last call
        are reused: a 30 Hz camera feeds a 67 Hz loop, so about half of the cycles skip the vision encoder."""
        if isinstance(images, np.ndarray):
            images = {self.cameras[0]: images}
        if instruction is not None and instruction.strip() != self.instruction:
            self.set_instruction(instruction)
        if self._lang is None:
            raise ObservationError("instruction: none set; call set_instruction('lift the pen') first")
        self.validate(images, qpos, depth)
        q = torch.as_tensor(np.asarray(qpos, np.float32), device=self.device)
        q = ((q - self._qpos_mean) / self._qpos_std).unsqueeze(0)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            vis = self._vision_tokens(images, depth, frame_key)
            out = self.model(None, q, self._lang, self._lang_pad, need_weights=need_attention, vision_tokens=vis)
        self.last_attention = out.attention
        chunk = out.actions[0].float() * self._act_std + self._act_mean
        return chunk.cpu().numpy()

    def set_cpu_threads(self, threads: int) -> None:
        """torch's intra-op threads for inference on CPU (0: leave torch's choice). One thread beats two for the
        batch-1 forward of a small model: its operations are too small to pay for the hand-offs."""
        if self.device.type == "cpu" and threads > 0:
            torch.set_num_threads(threads)

    def _vision_tokens(
        self, images: dict[str, np.ndarray], depth: dict[str, np.ndarray] | None, frame_key: object | None
    ) -> torch.Tensor:
        """(1, n_cam * P, h): the last call's when frame_key and the instruction are the same objects again."""
        cached = self._vision_cache
        if frame_key is not None and cached is not None and cached[0] is frame_key and cached[1] is self._lang:
            return cached[2]
        frames = torch.from_numpy(np.stack([images[c] for c in self.cameras])).to(self.device, non_blocking=True)
        frames = frames.permute(0, 3, 1, 2).unsqueeze(0)  # (1, n_cam, 3, H, W)
        depth_t = None
        if self.cfg.vision.use_depth and depth is not None:
            d = np.stack([np.asarray(depth[c], np.float32) for c in self.cameras])
            depth_t = torch.from_numpy(d).to(self.device).unsqueeze(1).unsqueeze(0)
        vis = self.model.encode_vision(frames, self._lang, self._lang_pad, depth_t)
        self._vision_cache = None if frame_key is None else (frame_key, self._lang, vis)
        return vis

    def describe(self) -> dict[str, Any]:
        return {
            "chunk_size": self.chunk_size,
            "state_dim": self.state_dim,
            "action_dim": self.cfg.model.action_dim,
            "cameras": self.cameras,
            "use_depth": self.cfg.vision.use_depth,
            "device": str(self.device),
            "instructions": self.ckpt.instructions,
        }
