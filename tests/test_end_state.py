"""Success judged by how an episode ends, the human-like teacher and the seeds' report."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
pytest.importorskip("mujoco", reason="mujoco not installed")

from ccol_policy.control import ClosedLoopExecutor
from ccol_sim.env import TASKS, PandaTable
from ccol_sim.sim_eval import Rollout, run_episode
from ccol_sim.teacher import FINAL_REST_S, HumanStyle, plan, waypoints


@pytest.fixture(scope="module")
def env() -> PandaTable:
    e = PandaTable(render_size=(32, 24))
    yield e
    e.close()


def _labels_episode(env: PandaTable, task: str, seed: int, labels: np.ndarray) -> Rollout:
    padded = np.concatenate([labels, np.repeat(labels[-1:], 30, 0)])
    executor = ClosedLoopExecutor("panda", 1 / 30, 30, 8, mode="chunk")
    return run_episode(env, lambda s, i, q: padded[s : s + 30], executor, task, seed, 30.0, len(labels), render=False)


def test_a_pen_lifted_then_lowered_again_fails_by_the_end_state(env: PandaTable) -> None:
    seed, task = 11, "lift the pen"
    env.reset(seed)
    demo = plan(env, task, np.random.default_rng(seed), 30.0)
    r = _labels_episode(env, task, seed, demo)
    assert r.success and r.first_success is not None  # held up to the end
    assert r.steps == len(demo)  # every episode runs its full length, solved or not
    # the same, then the pen lowered back onto the table and let go: it was up, but that is not how it ended
    back = demo[::-1]
    back = back[: int(np.argmax(back[:, 7] > 1e-3))]  # the lift backwards, down to where the hand closed
    undone = np.concatenate([demo, back, np.repeat(np.append(back[-1, :7], 0.08)[None], 30, 0)])
    r = _labels_episode(env, task, seed, undone)
    assert r.first_success is not None and r.first_success < len(demo)
    assert not r.success


def test_place_is_judged_with_the_hand_open_and_off_the_cube(env: PandaTable) -> None:
    seed, task = 12, "place the cubes"
    env.reset(seed)
    demo = plan(env, task, np.random.default_rng(seed), 100.0)
    release = int(np.flatnonzero((demo[:-1, 7] == 0) & (demo[1:, 7] > 0))[-1])  # the hand starts to open
    for row in demo[:release]:
        env.command(row[:7], row[7])
        env.step(0.01)
    assert env._arm_touches_red(env.data)  # red held in the closed hand above blue
    held = env.data.qpos.copy()
    env.end_state_success(task)
    np.testing.assert_array_equal(env.data.qpos, held)  # judged on a copy: the live world is left as it is
    for row in demo[release:]:
        env.command(row[:7], row[7])
        env.step(0.01)
    assert not env._arm_touches_red(env.data) and env.end_state_success(task)
    # knocked off blue after the release: the task's test passed once, the end state fails
    adr = env.model.jnt_qposadr[env.model.body_jntadr[env.ids.red]]
    env.data.qpos[adr : adr + 2] += 0.1
    env.step(0.5)
    assert not env.success(task) and not env.end_state_success(task)


def test_human_teacher_varies_its_manner_and_still_solves_by_the_end_state(env: PandaTable) -> None:
    durations, solved = [], []
    for task in TASKS:
        for seed in (21, 22):
            env.reset(seed)
            rows = plan(env, task, np.random.default_rng(seed), 100.0, teacher="human")
            durations.append(len(rows) / 100)
            for row in rows:
                env.command(row[:7], row[7])
                env.step(0.01)
            solved.append(env.end_state_success(task))
            rest = rows[-int(FINAL_REST_S * 100) :]
            assert np.ptp(rest, axis=0).max() == 0.0  # hands off at the end: the last pose held still
            moving = np.diff(rows[: -len(rest), :7], axis=0)
            assert np.abs(np.diff(moving, axis=0)).max() < 1e-3  # smooth: under 10 rad/s^2 at 100 Hz
    assert sum(solved) >= 5, solved
    env.reset(21)
    scripted = plan(env, "lift the pen", np.random.default_rng(21), 100.0)
    assert len({round(d, 2) for d in durations}) >= 5 and len(scripted) / 100 not in durations
    # two people, two manners: paces, approach heights and grasps differ per episode
    styles = [HumanStyle.draw(np.random.default_rng(s)) for s in range(20)]
    assert np.std([s.pace for s in styles]) > 0.1 and np.std([s.above for s in styles]) > 0.01
    env.reset(21)
    eager = replace(styles[0], overshoot=0.02, pause_p=1.0)
    exact = waypoints(env, "place the cubes", np.random.default_rng(3))
    human = waypoints(env, "place the cubes", np.random.default_rng(3), style=eager)
    # past the red cube and past blue, each corrected, and pauses wherever the gripper is not about to move
    assert len(human) >= len(exact) + 2 + 4
    assert np.linalg.norm(human[0][0][:2] - human[1][0][:2]) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="teachers"):
        plan(env, "lift the pen", np.random.default_rng(0), 30.0, teacher="robot")


def test_seeds_table_shows_each_seed_and_the_spread() -> None:
    from ccol_sim.pipeline import seeds_table

    def report(seed: int, ok: list[int]) -> dict:
        tasks = {
            t: {"successes": k, "episodes": 10, "success_rate": k / 10, "first_instant_successes": 10}
            for t, k in zip(TASKS, ok)
        }
        return {"tasks": tasks, "train_seed": seed, "held_out_action_l1": 0.01}

    text = seeds_table(
        {
            "ccol seed 0": report(0, [6, 9, 6]),
            "ccol seed 1": report(1, [3, 9, 3]),
            "act seed 0": report(0, [9, 9, 9]),
        }
    )
    assert "| ccol | 1 | 3/10 | 9/10 | 3/10 | 50% | 100% |" in text
    assert "| ccol | 2 | 60.0% | 14.1 | 50-70% | 100.0% |" in text  # mean, std (ddof 1), range over seeds
    assert "| act | 1 | 90.0% | 0.0 |" in text


def test_a_grasped_pen_stays_in_the_hand(env: PandaTable) -> None:
    """The Franka Hand holds a pen as long as it stays closed (soft contacts alone let it creep out in ~9 s)."""
    env.reset(1_000_000)
    for row in plan(env, "lift the pen", np.random.default_rng(0), 100.0):
        env.command(row[:7], row[7])
        env.step(0.01)
    up = env.body_pos("pen")[2]
    env.step(12.0)
    assert env.body_pos("pen")[2] == pytest.approx(up, abs=0.003) and env.end_state_success("lift the pen")
