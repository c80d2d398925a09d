"""Vision encoder (paper: "Vision Encoder"): a ViT whose patch tokens x_t feed the fusion."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ccol_policy.config import VisionConfig

log = logging.getLogger(__name__)


def _load_pretrained_vit(name_or_dir: str) -> nn.Module:
    from transformers import ViTModel

    try:
        return ViTModel.from_pretrained(name_or_dir, add_pooling_layer=False)
    except OSError as exc:
        raise FileNotFoundError(
            f"cannot load the ViT weights {name_or_dir!r} (no network, or not in the Hugging Face cache). "
            f"Download them once on a connected machine (`huggingface-cli download {name_or_dir} --local-dir DIR`) "
            "and set vision.pretrained=DIR."
        ) from exc


class ConvStem(nn.Sequential):
    """The convolutional stem of Xiao et al. (2021) in place of the ViT's patch embedding: pixel coordinates as
    extra channels, 3x3 stride-2 convolutions (log2(patch) of them, widths doubling up to `hidden`) and a 1x1
    projection;
    (N, C, S, S) -> (N, hidden, S / patch, S / patch)."""

    @property
    def weight(self) -> torch.Tensor:  # transformers' ViT reads the patch projection's dtype from here
        return self[1].weight


class CoordChannels(nn.Module):
    """Appends the pixel's x and y in [-1, 1] as two input channels (CoordConv, Liu et al. 2018): convolution
    features then carry where in the image they are, which absolute joint targets need."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
        return torch.cat([x, xs, ys], dim=1)


def conv_stem(channels: int, hidden: int, patch: int) -> ConvStem:
    layers: list[nn.Module] = [CoordChannels()]
    channels += 2
    n = patch.bit_length() - 1
    width = max(hidden // 2 ** (n - 1), 8) if n else hidden
    c = channels
    for _ in range(n):
        layers += [nn.Conv2d(c, width, 3, 2, 1), nn.GroupNorm(min(8, width // 4), width), nn.ReLU()]
        c, width = width, min(width * 2, hidden)
    layers.append(nn.Conv2d(c, hidden, 1))
    return ConvStem(*layers)


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Translate every image of (N, C, S, S) by its own random whole-pixel offset in [-pad, pad] (edges
    replicated): DrQ's augmentation (Kostrikov et al. 2020)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = (torch.randint(0, 2 * pad + 1, (2, n), device=x.device)).unbind(0)
    rows = dy[:, None] + torch.arange(h, device=x.device)[None]  # (N, H)
    cols = dx[:, None] + torch.arange(w, device=x.device)[None]  # (N, W)
    idx = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


class SpatialSoftmax(nn.Module):
    """Keypoints (Levine et al. 2016): a 1x1 convolution to K maps, a softmax over each map's pixels and the
    expected (x, y) in [-1, 1]; (N, C, h, w) -> (N, K, 2). A strong prior for where objects are, learnt from few
    demonstrations."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.maps = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.maps(features)
        n, k, h, w = logits.shape
        att = torch.softmax(logits.flatten(2) / self.log_temperature.exp(), dim=-1).view(n, k, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=features.device, dtype=att.dtype)
        ys = torch.linspace(-1.0, 1.0, h, device=features.device, dtype=att.dtype)
        return torch.stack([(att.sum(2) * xs).sum(-1), (att.sum(3) * ys).sum(-1)], dim=-1)


class VisionEncoder(nn.Module):
    """RGB(-D) frames of one or more cameras -> ViT patch tokens.

    Input images are uint8 (B, n_cam, 3, H, W), depth optional float metres (B, n_cam, 1, H, W); resizing and
    normalisation happen here so that they run on the policy's device.
    """

    def __init__(self, cfg: VisionConfig, condition_dim: int = 0) -> None:
        super().__init__()
        from transformers import ViTConfig, ViTModel

        self.cfg = cfg
        channels = 4 if cfg.use_depth else 3
        if cfg.pretrained:
            self.vit = _load_pretrained_vit(cfg.pretrained)
            if cfg.use_depth:
                self._add_depth_channel()
        else:
            vit_cfg = ViTConfig(
                image_size=cfg.image_size,
                patch_size=cfg.patch_size,
                num_channels=channels,
                hidden_size=cfg.hidden_size,
                num_hidden_layers=cfg.num_layers,
                num_attention_heads=cfg.num_heads,
                intermediate_size=cfg.intermediate_size,
            )
            self.vit = ViTModel(vit_cfg, add_pooling_layer=False)
            if cfg.stem == "conv":
                stem = conv_stem(channels, cfg.hidden_size, cfg.patch_size)
                self.vit.embeddings.patch_embeddings.projection = stem
                if cfg.keypoints:
                    # keypoints from the stem's stride-4 feature map (finer than the patch grid):
                    # stem = [coords, conv, norm, relu, conv, norm, relu (stride 4), ...]
                    tap = stem[6]
                    self.keypoints = SpatialSoftmax(stem[4].out_channels, cfg.keypoints)
                    # all K (x, y) and the instruction (condition_dim, pooled) jointly through an MLP into one
                    # token: where the object the instruction names is (K separate tokens, the first design,
                    # localised the grasp ~4x worse in a scratch run; research/vision_localisation.py)
                    self.keypoint_token = nn.Sequential(
                        nn.Linear(2 * cfg.keypoints + condition_dim, 2 * cfg.hidden_size),
                        nn.ReLU(),
                        nn.Linear(2 * cfg.hidden_size, cfg.hidden_size),
                    )
                    self._stem_features: torch.Tensor | None = None
                    tap.register_forward_hook(lambda module, args, out: setattr(self, "_stem_features", out))
        self.out_dim = self.vit.config.hidden_size
        self._interpolate_pos = self.vit.config.image_size != cfg.image_size
        self.register_buffer("mean", torch.tensor(cfg.image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.image_std).view(1, 3, 1, 1), persistent=False)
        if cfg.freeze:
            self.vit.requires_grad_(False)

    @property
    def tokens_per_camera(self) -> int:
        """Patch tokens (the patch grid, first) plus the keypoint token."""
        return (self.cfg.image_size // self.cfg.patch_size) ** 2 + (1 if self.cfg.keypoints else 0)

    def _add_depth_channel(self) -> None:
        """Widen the pretrained RGB patch embedding to RGB-D; the depth filter starts as the mean RGB filter."""
        proj = self.vit.embeddings.patch_embeddings.projection
        new = nn.Conv2d(4, proj.out_channels, proj.kernel_size, proj.stride)
        with torch.no_grad():
            new.weight[:, :3] = proj.weight
            new.weight[:, 3:] = proj.weight.mean(dim=1, keepdim=True)
            new.bias.copy_(proj.bias)
        self.vit.embeddings.patch_embeddings.projection = new
        self.vit.embeddings.patch_embeddings.num_channels = 4
        self.vit.config.num_channels = 4

    def preprocess(self, images: torch.Tensor, depth: torch.Tensor | None) -> torch.Tensor:
        """uint8 (N, 3, H, W) [+ depth (N, 1, H, W)] -> normalised float (N, C, S, S)."""
        x = images.float() / 255.0
        size = self.cfg.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.mean) / self.std
        if self.cfg.use_depth:
            if depth is None:
                raise ValueError("this policy uses depth (vision.use_depth=true) but no depth image was given")
            d = depth.float().clamp(0.0, self.cfg.depth_max_m) / self.cfg.depth_max_m
            if d.shape[-2:] != (size, size):
                d = F.interpolate(d, size=(size, size), mode="nearest")
            x = torch.cat([x, d * 2.0 - 1.0], dim=1)
        if self.training and self.cfg.random_shift:
            x = random_shift(x, self.cfg.random_shift)
        return x

    def forward(
        self, images: torch.Tensor, depth: torch.Tensor | None = None, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, n_cam, 3, H, W) uint8 [, condition (B, condition_dim) for the keypoint token] -> patch (+ keypoint)
        tokens (B, n_cam * P, d_v)."""
        b, n_cam = images.shape[:2]
        flat_depth = depth.flatten(0, 1) if depth is not None else None
        x = self.preprocess(images.flatten(0, 1), flat_depth)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.cfg.freeze):
            hidden = self.vit(pixel_values=x, interpolate_pos_encoding=self._interpolate_pos).last_hidden_state
        patches = hidden[:, 1:]  # drop the ViT [CLS]: (B * n_cam, P, d_v)
        if self.cfg.keypoints:
            points = self.keypoints(self._stem_features).flatten(1)  # (B * n_cam, 2K)
            if condition is not None:
                points = torch.cat([points, condition.repeat_interleave(n_cam, 0)], dim=1)
            patches = torch.cat([patches, self.keypoint_token(points).unsqueeze(1)], dim=1)
        return patches.reshape(b, n_cam * patches.shape[1], patches.shape[2])
