"""Shapes, gradients and the ablation switches of the CCoL network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ccol_policy.config import ABLATIONS
from ccol_policy.losses import ccol_loss, kl_divergence, reconstruction_loss
from ccol_policy.model import CCoL, InstructionEncoder, LatentODE, SemanticPhysicalAlignment
from ccol_policy.model.proprio_cvae import TemporalConvEncoder
from ccol_policy.model.text import UNK

from conftest import tiny_config


def _inputs(cfg, batch: int = 3):
    text = InstructionEncoder(cfg.text)
    lang, pad = text.batch(["lift the pen", "slide the cube", "place the cubes"][:batch], torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (batch, len(cfg.vision.cameras), 3, 40, 48), dtype=torch.uint8, generator=g)
    qpos = torch.randn(batch, cfg.model.state_dim, generator=g)
    actions = torch.randn(batch, cfg.model.chunk_size, cfg.model.action_dim, generator=g)
    is_pad = torch.zeros(batch, cfg.model.chunk_size, dtype=torch.bool)
    is_pad[0, -3:] = True
    return text, images, qpos, lang, pad, actions, is_pad


def _future(cfg, actions, is_pad, jump: float = 0.1):
    """The proprioception at the ODE grid's later times: the same chunk moved by `jump` (normalised units)."""
    n = cfg.model.ode.time_points - 1
    b = actions.shape[0]
    steps = torch.arange(1, n + 1, dtype=actions.dtype).view(1, n, 1)
    q = torch.zeros(b, n, cfg.model.state_dim) + jump * steps
    a = actions.unsqueeze(1) + jump * steps.unsqueeze(-1)
    return q, a, is_pad.unsqueeze(1).expand(-1, n, -1)


def _cfg(ablation=None, **kw):
    cfg = tiny_config(ablation, **kw)
    cfg.text.vocab = ["cube", "cubes", "lift", "pen", "place", "slide", "the"]
    return cfg


@pytest.mark.parametrize("ablation", sorted(ABLATIONS))
def test_every_ablation_trains_and_infers(ablation: str) -> None:
    cfg = _cfg(ablation)
    text, images, qpos, lang, pad, actions, is_pad = _inputs(cfg)
    model = CCoL(cfg, text.out_dim)
    out = model(images, qpos, lang, pad, actions=actions, is_pad=is_pad, future=_future(cfg, actions, is_pad))
    assert out.actions.shape == (3, cfg.model.chunk_size, cfg.model.action_dim)
    expected_t = cfg.model.ode.time_points if cfg.model.use_mcc else 1
    assert out.latent.shape == (3, expected_t, cfg.model.latent_dim)
    assert (out.disc_penalty is not None) == cfg.model.use_mcc
    loss, terms = ccol_loss(out, actions, is_pad, cfg.loss)
    loss.backward()
    assert torch.isfinite(loss)
    # the proprio encoder and the decoder both receive gradient
    assert model.proprio.to_mu.weight.grad.abs().sum() > 0
    assert model.action_head[-1].weight.grad.abs().sum() > 0
    assert model.proj_vision[0].weight.grad.abs().sum() > 0
    assert model.proj_lang[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(images, qpos, lang, pad).actions.shape == out.actions.shape


def test_ablation_switches_change_the_graph() -> None:
    full = CCoL(_cfg(), 32)
    act = CCoL(_cfg("act"), 32)
    avg = CCoL(_cfg("csa_no_att"), 32)
    tcn = CCoL(_cfg("tcn"), 32)
    assert isinstance(full.ode, LatentODE) and isinstance(full.fusion, SemanticPhysicalAlignment)
    assert act.ode is None and isinstance(act.fusion, torch.nn.TransformerEncoder)
    assert not any("lang_to_ctx" in n for n, _ in avg.named_parameters())
    assert any("lang_to_ctx" in n for n, _ in full.named_parameters())
    assert isinstance(tcn.proprio.encoder, TemporalConvEncoder)
    assert isinstance(full.proprio.encoder, torch.nn.TransformerEncoder)
    assert sum(p.numel() for p in act.parameters()) < sum(p.numel() for p in full.parameters())


def test_language_changes_the_prediction() -> None:
    cfg = _cfg()
    text, images, qpos, lang, pad, _, _ = _inputs(cfg, batch=2)
    model = CCoL(cfg, text.out_dim).eval()
    same = images[:1].expand(2, -1, -1, -1, -1)
    out = model(same, qpos[:1].expand(2, -1), lang, pad).actions
    assert (out[0] - out[1]).abs().max() > 1e-4


def test_csa_attention_maps_cover_words_and_context() -> None:
    cfg = _cfg()
    text, images, qpos, lang, pad, _, _ = _inputs(cfg, batch=2)
    model = CCoL(cfg, text.out_dim).eval()
    out = model(images[:2], qpos[:2], lang, pad, need_weights=True)
    n_ctx = model.layout.vision.stop
    assert len(out.attention) == cfg.model.fusion_layers
    att = out.attention[0].lang_to_context
    assert att.shape == (2, lang.shape[1], n_ctx)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, lang.shape[1]), atol=1e-5, rtol=0)
    per_cam = (cfg.vision.image_size // cfg.vision.patch_size) ** 2
    assert model.layout.patches_per_camera == per_cam


def test_depth_is_a_fourth_channel() -> None:
    cfg = _cfg(**{"vision.use_depth": True})
    text, images, qpos, lang, pad, actions, is_pad = _inputs(cfg, batch=2)
    model = CCoL(cfg, text.out_dim)
    depth = torch.rand(2, 1, 1, 40, 48) * 3.0
    out = model(images[:2], qpos[:2], lang, pad, depth=depth, actions=actions[:2], is_pad=is_pad[:2])
    out.actions.sum().backward()
    assert model.vision.vit.embeddings.patch_embeddings.projection.weight.shape[1] == 4


def test_latent_ode_is_adaptive_dopri5_and_adjoint_matches() -> None:
    cfg = _cfg(**{"model.ode.time_points": 4, "model.ode.step": 1.0})
    ode = LatentODE(cfg.model.latent_dim, cfg.model.ode)
    with torch.no_grad():
        ode.func.out.weight.normal_(0, 0.5)
    z0 = torch.randn(5, cfg.model.latent_dim)
    ode.func.nfe = 0
    traj = ode(z0)
    assert traj.shape == (5, 4, cfg.model.latent_dim)
    torch.testing.assert_close(traj[:, 0], z0)
    assert ode.func.nfe >= 6  # at least one Dormand-Prince step (6 stages + FSAL)
    cfg.model.ode.adjoint = True
    adj = LatentODE(cfg.model.latent_dim, cfg.model.ode)
    adj.load_state_dict(ode.state_dict())
    torch.testing.assert_close(adj(z0), traj, atol=1e-4, rtol=1e-4)


def test_disc_penalty_vanishes_for_latents_that_follow_the_field_and_grows_with_jumps() -> None:
    cfg = _cfg(**{"model.ode.time_points": 5, "model.ode.step": 1.0})
    ode = LatentODE(cfg.model.latent_dim, cfg.model.ode)
    with torch.no_grad():
        ode.func.out.weight.zero_()
        ode.func.out.bias.fill_(0.3)  # f = 0.3: z(t) = z0 + 0.3 t exactly
    traj = ode(torch.zeros(2, cfg.model.latent_dim))
    assert ode.disc_penalty(traj).item() < 1e-10
    bent = traj.clone()
    bent[:, 2] += 1.0
    assert ode.disc_penalty(bent).item() > 1.0


def test_disc_penalty_acts_on_the_encoded_latents_with_a_gradient_like_the_reconstructions() -> None:
    """E_disc compares the encoder's latents at the grid's steps with the field: it is not the solver's residual
    (zero for its own solution) but of the order of the other terms when the proprioception jumps."""
    cfg = _cfg()
    text, images, qpos, lang, pad, actions, is_pad = _inputs(cfg)
    model = CCoL(cfg, text.out_dim)
    noise = torch.zeros(3, cfg.model.latent_dim)
    smooth = model(
        images, qpos, lang, pad, actions=actions, is_pad=is_pad, noise=noise, future=_future(cfg, actions, is_pad, 0.0)
    )
    jumpy = model(
        images, qpos, lang, pad, actions=actions, is_pad=is_pad, noise=noise, future=_future(cfg, actions, is_pad, 1.0)
    )
    assert jumpy.disc_penalty.item() > 20 * smooth.disc_penalty.item()
    assert jumpy.disc_penalty.item() > 0.01
    params = list(model.parameters())
    g_disc = torch.autograd.grad(jumpy.disc_penalty, params, retain_graph=True, allow_unused=True)
    recon = reconstruction_loss(jumpy.actions, actions, is_pad, "l1")
    g_recon = torch.autograd.grad(recon, params, allow_unused=True)
    norm = lambda gs: torch.sqrt(sum(g.pow(2).sum() for g in gs if g is not None))  # noqa: E731
    assert 0.5 < norm(g_disc) / norm(g_recon) < 50, (norm(g_disc), norm(g_recon))
    # the field receives gradient too: it learns the encoded dynamics
    assert torch.autograd.grad(jumpy.disc_penalty, model.ode.func.out.weight)[0].abs().sum() > 0


def test_loss_terms_by_hand() -> None:
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0]])
    assert kl_divergence(mu, logvar).item() == pytest.approx(0.5)
    pred = torch.zeros(1, 2, 1)
    target = torch.tensor([[[1.0], [3.0]]])
    is_pad = torch.tensor([[False, True]])
    assert reconstruction_loss(pred, target, is_pad, "l1").item() == pytest.approx(0.5)
    assert reconstruction_loss(pred, target, torch.zeros_like(is_pad), "l2").item() == pytest.approx(5.0)


def test_unknown_words_are_reported_and_empty_instruction_rejected() -> None:
    cfg = _cfg()
    text = InstructionEncoder(cfg.text)
    emb = text.embed("lift the banana")
    assert emb.unknown_words == ["banana"]
    assert text.embed("lift the banana") is emb  # cached, not re-encoded
    ids, _, _ = text._tokenize("lift the banana")
    assert UNK in ids
    with pytest.raises(ValueError, match="instruction is empty"):
        text.embed("   ")


def test_ode_latent_trajectory_is_smoother_than_per_step_latents() -> None:
    """Measure: on the same time grid, the NeuralODE latent path has a far smaller acceleration fluctuation
    than a vanilla CVAE's latent drawn afresh at every step from the same posterior."""
    from ccol_policy.metrics import smoothness

    torch.manual_seed(0)
    cfg = _cfg(**{"model.ode.time_points": 20, "model.ode.step": 0.25})
    text, images, qpos, lang, pad, actions, is_pad = _inputs(cfg)
    model = CCoL(cfg, text.out_dim)
    with torch.no_grad():
        model.ode.func.out.weight.normal_(0, 0.05)  # a non-trivial flow
        mu, logvar = model.proprio(qpos, actions, is_pad)
        ode_path = model.ode(mu)[0].numpy()  # (20, d_z)
        g = torch.Generator().manual_seed(0)
        per_step = (mu[0] + torch.randn(20, mu.shape[1], generator=g) * torch.exp(0.5 * logvar[0])).numpy()
    ode_s, step_s = smoothness(ode_path), smoothness(per_step)
    assert np.abs(np.diff(ode_path, axis=0)).max() > 1e-3  # the path does move
    assert ode_s["acceleration_fluctuation"] < 0.2 * step_s["acceleration_fluctuation"], (ode_s, step_s)


def test_frozen_backbone_gets_no_gradient() -> None:
    cfg = _cfg(**{"vision.freeze": True})
    text, images, qpos, lang, pad, actions, is_pad = _inputs(cfg)
    model = CCoL(cfg, text.out_dim)
    out = model(images, qpos, lang, pad, actions=actions, is_pad=is_pad)
    ccol_loss(out, actions, is_pad, cfg.loss)[0].backward()
    assert all(p.grad is None for p in model.vision.vit.parameters())
    assert model.proj_vision[0].weight.grad is not None


def test_missing_pretrained_weights_offline_name_the_setting(tmp_path) -> None:
    from ccol_policy.model.vision import VisionEncoder

    cfg = _cfg(**{"vision.pretrained": str(tmp_path / "no_vit_here")})
    with pytest.raises(FileNotFoundError, match="vision.pretrained"):
        VisionEncoder(cfg.vision)
    cfg = _cfg(**{"text.pretrained": str(tmp_path / "no_roberta_here")})
    with pytest.raises(FileNotFoundError, match="text.pretrained"):
        InstructionEncoder(cfg.text)


def test_conv_stem_keypoints_and_random_shift() -> None:
    from ccol_policy.model.vision import SpatialSoftmax, random_shift

    cfg = _cfg(**{"vision.stem": "conv", "vision.keypoints": 4, "vision.random_shift": 2})
    text, images, qpos, lang, pad, actions, is_pad = _inputs(cfg)
    model = CCoL(cfg, text.out_dim)
    assert model.vision.tokens_per_camera == (32 // 8) ** 2 + 1  # patch grid first, then the keypoint token
    out = model(images, qpos, lang, pad, actions=actions, is_pad=is_pad)
    out.actions.abs().mean().backward()
    assert model.vision.keypoints.maps.weight.grad.abs().sum() > 0  # the keypoints feed the policy
    model.eval()
    with torch.no_grad():
        a = model(images, qpos, lang, pad).actions
        b = model(images, qpos, lang, pad).actions
    torch.testing.assert_close(a, b)  # no augmentation at inference
    with torch.no_grad():  # the keypoint token (last) depends on the instruction, the patch tokens do not
        c1 = model.vision(images, None, torch.zeros(images.shape[0], text.out_dim))
        c2 = model.vision(images, None, torch.ones(images.shape[0], text.out_dim))
    torch.testing.assert_close(c1[:, :-1], c2[:, :-1])
    assert (c1[:, -1] - c2[:, -1]).abs().max() > 1e-4
    # a keypoint follows a bright spot: spatial softmax of a map peaked at (x=3, y=1) of a 4x4 grid
    ssm = SpatialSoftmax(1, 1)
    with torch.no_grad():
        ssm.maps.weight.fill_(1.0)
        ssm.maps.bias.zero_()
        ssm.log_temperature.fill_(-3.0)
    feat = torch.zeros(1, 1, 4, 4)
    feat[0, 0, 1, 3] = 1.0
    torch.testing.assert_close(ssm(feat)[0, 0], torch.tensor([1.0, -1.0 / 3]), atol=0.05, rtol=0)
    # random shift moves every image by whole pixels within the pad
    x = torch.arange(64.0).view(1, 1, 8, 8).repeat(5, 1, 1, 1)
    shifted = random_shift(x, 1)
    assert shifted.shape == x.shape and any(not torch.equal(s, x[0]) for s in shifted)
    for s in shifted:  # each is the original translated by (dy, dx) in [-1, 1]^2 (interior compared)
        assert any(
            torch.equal(s[0, 2:-2, 2:-2], x[0, 0, 2 + dy : 6 + dy, 2 + dx : 6 + dx])
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )


def test_fixed_step_ode_bounds_the_function_evaluations() -> None:
    cfg = _cfg(**{"model.ode.solver": "rk4", "model.ode.step_size": 1.0, "model.ode.step": 2.0})
    ode = LatentODE(cfg.model.latent_dim, cfg.model.ode)
    with torch.no_grad():
        ode.func.out.weight.normal_(0, 2.0)  # a stiff learned field: dopri5 would take many steps
    ode.func.nfe = 0
    ode(torch.randn(4, cfg.model.latent_dim))
    assert ode.func.nfe == 8  # rk4: 2 steps of 1.0 over [0, 2], 4 evaluations each, whatever the field
