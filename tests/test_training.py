"""The trainer: learning, exact resume, the distributed path and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ccol_policy.data import DatasetError
from ccol_policy.training import StepBatchSampler, Trainer, train

from conftest import tiny_config


def test_tiny_model_learns_the_synthetic_tasks(synthetic_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(
        **{
            "train.steps": 150,
            "train.eval_every": 150,
            "optim.batch_size": 16,
            "optim.lr": 2e-3,
            "train.val_batches": 6,
        }
    )
    result = train(cfg, [synthetic_dir], tmp_path, progress=False)
    vals = [r["val_l1"] for r in result.history if "val_l1" in r]
    assert len(vals) == 2
    assert vals[-1] < 0.6 * vals[0], vals
    starts = [r["val_l1_start"] for r in result.history if "val_l1" in r]  # the reach, held out, on its own
    assert len(starts) == 2 and all(np.isfinite(starts)) and starts[-1] < starts[0], starts
    for name in ("latest", "best"):
        for f in (
            "model.safetensors",
            "config.yaml",
            "norm_stats.json",
            "text_encoder.json",
            "meta.json",
            "README.md",
            "instructions.json",
        ):
            assert (tmp_path / name / f).is_file(), (name, f)
    meta = json.loads((tmp_path / "best" / "meta.json").read_text())
    assert meta["dataset_hash"] and meta["step"] == 150 and meta["validation"]["val_l1"] == pytest.approx(vals[-1])
    assert (tmp_path / "latest" / "train_state.pt").is_file()
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000
    assert "lift the pen" in (tmp_path / "best" / "README.md").read_text()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("train_disc" in r for r in rows) and result.samples_per_s > 0


def test_resume_matches_an_uninterrupted_run(synthetic_dir: Path, tmp_path: Path) -> None:
    over = {"train.steps": 8, "train.save_every": 4, "train.eval_every": 4, "model.dropout": 0.1}
    train(tiny_config(**over), [synthetic_dir], tmp_path / "full", progress=False)
    half = dict(over, **{"train.steps": 4})
    train(tiny_config(**half), [synthetic_dir], tmp_path / "split", progress=False)
    res = train(tiny_config(**over), [synthetic_dir], tmp_path / "split", resume=True, progress=False)
    assert res.step == 8
    a = load_file(tmp_path / "full" / "latest" / "model.safetensors")
    b = load_file(tmp_path / "split" / "latest" / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0, msg=k)
    with pytest.raises(ValueError, match="different config"):
        Trainer(tiny_config(**dict(over, **{"optim.lr": 0.5})), [synthetic_dir], tmp_path / "split", resume=True)


def test_batches_are_deterministic_and_split_across_ranks() -> None:
    one = StepBatchSampler(100, 8, seed=1, start=0, end=5, rank=0, world=1)
    r0 = StepBatchSampler(100, 8, seed=1, start=0, end=5, rank=0, world=2)
    r1 = StepBatchSampler(100, 8, seed=1, start=0, end=5, rank=1, world=2)
    for a, b, c in zip(one, r0, r1):
        assert a == b + c
    assert list(StepBatchSampler(100, 8, 1, 3, 5, 0, 1)) == list(one)[3:]


GRAD_SCRIPT = """
import sys, torch
sys.path[:0] = {paths!r}
from conftest import tiny_config
from ccol_policy.training import Trainer
cfg = tiny_config(**{{"optim.optimizer": "sgd", "optim.lr": 0.1, "optim.momentum": 0.0, "optim.weight_decay": 0.0,
                     "optim.grad_clip": 0.0, "train.steps": 1}})
t = Trainer(cfg, [{data!r}], {out!r}, device="cpu", progress=False)
batch = t.train_set[0]
from ccol_policy.training import StepBatchSampler, _batch_to
from torch.utils.data import default_collate
idx = StepBatchSampler(len(t.train_set), 8, cfg.train.seed, 0, 1, t.dist.rank, t.dist.world).indices(0)
batch = default_collate([t.train_set[i] for i in idx])
t.train_step(batch, 0)
if t.dist.rank == 0:
    torch.save({{k: v.detach().clone() for k, v in t.model.state_dict().items()}}, {result!r})
if t.dist.world > 1:
    torch.distributed.barrier()
t.close()
"""


def test_two_process_gloo_matches_single_process(synthetic_dir: Path, tmp_path: Path) -> None:
    paths = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "ccol_policy")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    results = {}
    for world in (1, 2):
        script = tmp_path / f"grad{world}.py"
        out = tmp_path / f"w{world}.pt"
        script.write_text(
            GRAD_SCRIPT.format(paths=paths, data=str(synthetic_dir), out=str(tmp_path / f"run{world}"), result=str(out))
        )
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={world}",
            "--standalone",
            str(script),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[world] = torch.load(out)
    moved = 0
    init = Trainer(
        tiny_config(**{"train.steps": 1}), [synthetic_dir], tmp_path / "init", device="cpu"
    ).model.state_dict()
    for k, v in results[1].items():
        torch.testing.assert_close(results[2][k], v, atol=1e-5, rtol=1e-4, msg=k)
        moved += int(not torch.equal(v, init[k]))
    assert moved > 10  # the step really changed the weights


def test_bad_input_fails_before_training(tmp_path: Path, synthetic_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no episodes"):
        Trainer(tiny_config(), [empty], tmp_path / "o1")
    with pytest.raises(DatasetError, match="model.action_dim=7"):
        Trainer(tiny_config(**{"model.action_dim": 7}), [synthetic_dir], tmp_path / "o2")
    # a stale statistics file for other dimensions is recomputed, one for the same data set is checked
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in sorted(synthetic_dir.glob("*.hdf5"))[:3]:
        (copy / p.name).write_bytes(p.read_bytes())
    with h5py.File(copy / sorted(p.name for p in synthetic_dir.glob("*.hdf5"))[0], "a") as f:
        del f.attrs["instruction"]
    with pytest.raises(DatasetError, match="no instruction"):
        Trainer(tiny_config(), [copy], tmp_path / "o3")
    with pytest.raises(ValueError, match="needs a GPU"):
        Trainer(tiny_config(**{"train.precision": "bf16"}), [synthetic_dir], tmp_path / "o4", device="cpu")
    with pytest.raises(FileNotFoundError, match="--resume"):
        Trainer(tiny_config(), [synthetic_dir], tmp_path / "o5", resume=True)
    assert not (tmp_path / "o2").exists()


def test_norm_stats_that_do_not_fit_the_config_are_an_error(tmp_path: Path, synthetic_dir: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    for p in sorted(synthetic_dir.glob("*.hdf5"))[:3]:
        (data / p.name).write_bytes(p.read_bytes())
    from ccol_policy.data import load_or_compute_norm_stats, scan_episodes, split_episodes

    cfg = tiny_config()
    train_infos = split_episodes(scan_episodes([data]), cfg.data.val_fraction, cfg.train.seed)[0]
    stats = load_or_compute_norm_stats(train_infos, data)  # the trainer's statistics: training episodes only
    stats.action_mean = np.zeros(7, np.float32)
    stats.save(data / "norm_stats.json")
    with pytest.raises(DatasetError, match="norm_stats.json"):
        Trainer(cfg, [data], tmp_path / "o")
