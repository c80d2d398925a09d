"""`ccol eval-bag` on bags made in the test: hand-computed metrics, bad bags, compare mode, report and plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bag_factory import make_bag, trajectory

from ccol_policy.bags import BagError, BagTopics
from ccol_policy.cli import main
from ccol_policy.eval_bag import evaluate, evaluate_bag, summarise, word_roles
from ccol_policy.metrics import smoothness
from ccol_policy.policy import CCoLPolicy
from ccol_policy.training import train

from conftest import tiny_config


@pytest.fixture(scope="module")
def checkpoints(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, ablation in (("ccol", None), ("act", "act")):
        d = tmp_path_factory.mktemp(name)
        train(tiny_config(ablation, **{"train.steps": 10}), [synthetic_dir], d, progress=False)
        out[name] = d / "best"
    return out


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bags")
    make_bag(d / "a", duration=2.0)
    make_bag(d / "b", duration=1.5, storage="sqlite3", instruction="slide the cube")
    return d


def test_smoothness_by_hand() -> None:
    t = np.arange(6, dtype=float)[:, None]
    s = smoothness(t**2)  # v = 2t + 1, c = 2
    assert s["velocity_fluctuation"] == pytest.approx(np.std([1, 3, 5, 7, 9]))
    assert s["acceleration_fluctuation"] == pytest.approx(0.0)
    assert s["min_acceleration"] == pytest.approx(2.0)


def test_metrics_against_a_hand_computed_case(checkpoints, bags: Path, monkeypatch) -> None:
    policy = CCoLPolicy.from_checkpoint(checkpoints["ccol"], device="cpu")
    k = policy.chunk_size
    monkeypatch.setattr(policy, "predict_chunk", lambda *a, **kw: np.zeros((k, 8), np.float32))
    from ccol_policy.bags import SyncConfig

    ev = evaluate_bag(policy, bags / "a", BagTopics(), SyncConfig(control_rate_hz=20.0), attention_steps=0)
    n = len(ev.times)
    q = trajectory(ev.times)  # the recorded motion, exactly
    nxt = np.concatenate([q[1:], q[-1:]])  # recorded joint positions one step ahead
    expected_l1_1 = np.abs(nxt).mean()
    expected_l1_k = np.mean([np.abs(nxt[t + i]).mean() for t in range(n) for i in range(k) if t + i < n])
    s = summarise([ev], [1, k])
    assert s["l1@1"] == pytest.approx(expected_l1_1, abs=2e-3)
    assert s[f"l1@{k}"] == pytest.approx(expected_l1_k, abs=2e-3)
    assert s["executed"]["acceleration_fluctuation"] == 0.0
    assert s["latency_ms_median"] >= 0 and s["steps"] == n


def test_compare_mode_report_and_plots(checkpoints, bags: Path, tmp_path: Path) -> None:
    make_bag(bags.parent / "extra_corrupt", duration=1.0)
    corrupt = bags.parent / "extra_corrupt"
    mcap = next(corrupt.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[:3000])
    make_bag(bags.parent / "extra_nocam", duration=1.0, with_images=False)
    inputs = [bags / "a", bags / "b", corrupt, bags.parent / "extra_nocam"]
    report = evaluate(dict(checkpoints), inputs, tmp_path, BagTopics(), device="cpu", progress=False)
    assert set(report["summary"]) == {"ccol", "act"}
    assert len(report["skipped"]) == 2
    assert "truncated or corrupt" in report["skipped"][str(corrupt)]
    assert "not in the bag" in report["skipped"][str(bags.parent / "extra_nocam")]
    md = (tmp_path / "report.md").read_text()
    assert "| ccol |" in md and "| act |" in md and "Skipped bags" in md
    for fig in (
        "error_vs_horizon.png",
        "trajectories.png",
        "velocity_acceleration.png",
        "attention_ccol.png",
        "word_attention_ccol.png",
    ):
        assert (tmp_path / fig).stat().st_size > 2000, fig
    assert not (tmp_path / "attention_act.png").exists()  # the ACT baseline has no CSA attention
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["summary"]["ccol"]["steps"] == data["summary"]["act"]["steps"] > 40


def test_all_bags_bad_is_an_error(checkpoints, tmp_path: Path) -> None:
    make_bag(tmp_path / "nocam", with_images=False)
    with pytest.raises(BagError, match="no bag could be evaluated"):
        evaluate(
            {"c": checkpoints["ccol"]}, [tmp_path / "nocam"], tmp_path / "r", BagTopics(), device="cpu", progress=False
        )


def test_cli_eval_bag(checkpoints, bags: Path, tmp_path: Path) -> None:
    code = main(
        [
            "eval-bag",
            str(bags / "a"),
            "--checkpoint",
            f"mine={checkpoints['ccol']}",
            "--out",
            str(tmp_path / "r"),
            "--device",
            "cpu",
            "--no-progress",
            "--instruction",
            "place the cubes",
        ]
    )
    assert code == 0
    assert json.loads((tmp_path / "r" / "report.json").read_text())["summary"]["mine"]["steps"] > 10
    assert main(["eval-bag", str(tmp_path / "missing"), "--checkpoint", str(checkpoints["ccol"])]) == 2


def test_word_roles() -> None:
    assert word_roles(["<s>", "lift", "the", "pen", "</s>"]) == {1: "verb", 3: "noun"}
