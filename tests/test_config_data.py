"""Configuration loading and the episode data format."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ccol_policy.config import (
    ABLATIONS,
    CCoLConfig,
    config_from_dict,
    load_config,
    parse_overrides,
    presets_dir,
    resolve_preset,
)
from ccol_policy.data import (
    DatasetError,
    EpisodeDataset,
    compute_norm_stats,
    load_or_compute_norm_stats,
    scan_episodes,
    split_episodes,
    write_episode,
)


def test_presets_load_and_paper_defaults() -> None:
    names = sorted(p.stem for p in presets_dir().glob("*.yaml"))
    assert {"paper_vit_b", "paper_vit_b_frozen", "paper_vit_s", "small_cpu"} <= set(names)
    for name in names:
        load_config(resolve_preset(name))
    paper = load_config(resolve_preset("paper_vit_b"))
    assert (paper.optim.optimizer, paper.optim.lr, paper.optim.momentum, paper.optim.batch_size) == (
        "sgd",
        1e-5,
        0.9,
        8,
    )
    assert paper.model.chunk_size == 50 and paper.model.ode.solver == "dopri5"
    assert (paper.model.ode.time_points, paper.model.ode.step) == (2, 2.0)
    assert load_config(resolve_preset("paper_vit_b_frozen")).vision.freeze


def test_overrides_ablations_and_unknown_keys() -> None:
    cfg = load_config(overrides=parse_overrides(["optim.lr=3e-4", "model.use_csa=false"]), ablation="wo_mcc")
    assert cfg.optim.lr == 3e-4 and not cfg.model.use_csa and not cfg.model.use_mcc
    assert load_config(ablation="wo_disc").loss.disc_weight == 0
    assert set(ABLATIONS) >= {"wo_mcc", "wo_csa", "wo_disc", "csa_no_att", "tcn", "tcn_no_mcc", "act"}
    with pytest.raises(ValueError, match="model.use_cas"):
        load_config(overrides={"model.use_cas": False})
    with pytest.raises(ValueError, match="proprio_encoder"):
        load_config(overrides={"model.proprio_encoder": "lstm"})
    with pytest.raises(ValueError, match="unknown ablation"):
        load_config(ablation="wo_everything")
    with pytest.raises(FileNotFoundError, match="presets"):
        resolve_preset("no_such_preset")


def _episode(
    path: Path, t: int = 12, state: int = 8, action: int = 8, instruction: str | None = "lift the pen"
) -> Path:
    rng = np.random.default_rng(len(str(path)))
    qpos = rng.normal(size=(t, state)).astype(np.float32)
    act = np.arange(t * action, dtype=np.float32).reshape(t, action)
    imgs = {"color": rng.integers(0, 255, (t, 16, 16, 3), dtype=np.uint8)}
    write_episode(path, qpos, act, imgs, instruction or "x")
    if instruction is None:
        with h5py.File(path, "a") as f:
            del f.attrs["instruction"]
    return path


@pytest.mark.parametrize("rest_after_end", [True, False])
def test_dataset_chunks_pad_with_last_action(tmp_path: Path, rest_after_end: bool) -> None:
    _episode(tmp_path / "episode_0000.hdf5", t=12)
    infos = scan_episodes([tmp_path])
    stats = compute_norm_stats(infos)
    ds = EpisodeDataset(
        infos, stats, chunk_size=5, cameras=["color"], instructions=["lift the pen"], rest_after_end=rest_after_end
    )
    assert len(ds) == 12
    s = ds[10]
    assert s["images"].shape == (1, 3, 16, 16) and s["actions"].shape == (5, 8)
    # at rest after the end: the held last action is a target the loss sees; ACT's mask hides it
    assert s["is_pad"].tolist() == [False, False] + [not rest_after_end] * 3
    raw = stats.denormalise_action(s["actions"].numpy())
    np.testing.assert_allclose(raw[:, 0], [80, 88, 88, 88, 88], atol=1e-3)


def test_start_indices_are_each_episodes_first_steps(tmp_path: Path) -> None:
    _episode(tmp_path / "episode_0000.hdf5", t=12)
    _episode(tmp_path / "episode_0001.hdf5", t=4)
    infos = scan_episodes([tmp_path])
    ds = EpisodeDataset(infos, compute_norm_stats(infos), chunk_size=5, cameras=["color"], instructions=["x"])
    assert [ds.index[i] for i in ds.start_indices(10, stride=5)] == [(0, 0), (0, 5), (1, 0)]


def test_removed_experiment_keys_load_when_off_and_are_refused_when_on() -> None:
    # configs and checkpoints written before the knobs were removed still load
    cfg = config_from_dict({"model": {"relative_joints": 0}, "data": {"qpos_noise": 0.0, "qpos_dropout": 0}})
    assert cfg == CCoLConfig()
    with pytest.raises(ValueError, match="model.relative_joints=7 was a rejected experiment"):
        config_from_dict({"model": {"relative_joints": 7}})


def test_bad_datasets_are_rejected_with_reasons(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no episodes"):
        scan_episodes([tmp_path])
    with pytest.raises(DatasetError, match="does not exist"):
        scan_episodes([tmp_path / "missing"])
    a = tmp_path / "a"
    a.mkdir()
    _episode(a / "e0.hdf5")
    _episode(a / "e1.hdf5", action=14)
    with pytest.raises(DatasetError, match="different action_dim"):
        scan_episodes([a])
    b = tmp_path / "b"
    b.mkdir()
    _episode(b / "e0.hdf5", instruction=None)
    with pytest.raises(DatasetError, match="no instruction"):
        scan_episodes([b])
    assert scan_episodes([b], default_instruction="lift the pen")[0].instruction == "lift the pen"
    c = tmp_path / "c"
    c.mkdir()
    (c / "e0.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        scan_episodes([c])
    with pytest.raises(DatasetError, match="camera"):
        scan_episodes([b], "x", cameras=["wrist"])


def test_norm_stats_cached_and_nan_rejected(tmp_path: Path) -> None:
    for i in range(3):
        _episode(tmp_path / f"e{i}.hdf5")
    infos = scan_episodes([tmp_path])
    stats = load_or_compute_norm_stats(infos, tmp_path)
    assert (tmp_path / "norm_stats.json").is_file()
    again = load_or_compute_norm_stats(infos, tmp_path)
    np.testing.assert_allclose(again.action_mean, stats.action_mean)
    with pytest.raises(DatasetError, match="model.action_dim=7"):
        stats.check_dims(8, 7)
    with h5py.File(tmp_path / "e1.hdf5", "a") as f:
        f["observations/qpos"][3, 2] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        compute_norm_stats(scan_episodes([tmp_path]))


def test_split_is_by_episode_and_seeded(tmp_path: Path) -> None:
    for i in range(10):
        _episode(tmp_path / f"e{i}.hdf5")
    infos = scan_episodes([tmp_path])
    train, val = split_episodes(infos, 0.2, seed=3)
    assert len(val) == 2 and len(train) == 8 and not {i.path for i in train} & {i.path for i in val}
    assert [i.path for i in split_episodes(infos, 0.2, seed=3)[1]] == [i.path for i in val]


def test_write_episode_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "e.hdf5"
    with pytest.raises(ValueError, match="same length"):
        write_episode(path, np.zeros((3, 8)), np.zeros((2, 8)), {"color": np.zeros((3, 4, 4, 3), np.uint8)}, "x")
    assert not path.exists() and not list(tmp_path.iterdir())
