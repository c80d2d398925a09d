"""Teachers: stand-ins for the person guiding the arm. Inverse kinematics with MuJoCo's site Jacobian (damped
least squares, gripper pointing down), smooth joint-space segments between task waypoints. The `scripted` teacher
moves one way at one speed profile; the `human` one (`HumanStyle`) demonstrates as a person guiding the arm by
hand does: each episode its own pace and velocity profile, pauses, overshoots corrected, varied grasps, and the
tremor of a hand-guided arm."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ccol_policy.robots import SIM_HAND_TCP_TO_PAD_M as PAD
from ccol_policy.robots import SIM_HAND_TCP_TO_TIP_M as TIP
from ccol_policy.robots import tcp_floor
from ccol_sim.env import MAX_WIDTH, PandaTable
from ccol_sim.layouts import TEACHERS
from ccol_sim.scene import CUBE, PEN_RADIUS, READY, SIM_TO_REAL, TABLE_Z

CLEARANCE = 0.004  # the fingertips' lowest height above the table in a demonstration
# the executor's floor for the TCP (ClosedLoopExecutor tcp_floor_z): 1 mm under the lowest demonstrated target
# (whose Franka-kinematics TCP is 0.3 mm below the site), so that demonstrations replay untouched
TCP_FLOOR_Z = tcp_floor(TABLE_Z, TIP, CLEARANCE - 0.001)
# the demonstrator's wait at the end, the task done and the hand off, before stopping the recording: the policy
# learns that a finished task is held (the episode's last action also counts past its end: `DataConfig.rest_after_end`)
FINAL_REST_S = 1.5
DOWN = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])  # EE frame: z down


def _yaw_rot(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ DOWN


def solve_ik(env: PandaTable, pos: np.ndarray, yaw: float, q_init: np.ndarray, iters: int = 200) -> np.ndarray:
    """Joint positions (real convention) putting the end-effector site at `pos`, pointing down, rotated by `yaw`."""
    m = env.model
    d = mujoco.MjData(m)
    d.qpos[:] = env.data.qpos
    q = q_init.copy()
    target_r = _yaw_rot(yaw)
    jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
    lo, hi = m.jnt_range[[m.dof_jntid[i] for i in env.ids.arm_dof]].T
    for _ in range(iters):
        d.qpos[env.ids.arm_qpos] = q - SIM_TO_REAL
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        err_p = pos - d.site_xpos[env.ids.ee_site]
        r = d.site_xmat[env.ids.ee_site].reshape(3, 3)
        err_r = 0.5 * (
            np.cross(r[:, 0], target_r[:, 0]) + np.cross(r[:, 1], target_r[:, 1]) + np.cross(r[:, 2], target_r[:, 2])
        )
        err = np.concatenate([err_p, 0.5 * err_r])
        if np.linalg.norm(err_p) < 1e-4 and np.linalg.norm(err_r) < 1e-3:
            break
        mujoco.mj_jacSite(m, d, jacp, jacr, env.ids.ee_site)
        j = np.vstack([jacp[:, env.ids.arm_dof], 0.5 * jacr[:, env.ids.arm_dof]])
        dq = j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(6), err)
        dq += 0.05 * (np.eye(7) - np.linalg.pinv(j) @ j) @ (READY - q)  # stay near the ready pose
        q = np.clip(q + dq, lo + SIM_TO_REAL + 0.01, hi + SIM_TO_REAL - 0.01)
    return q


def min_jerk(q0: np.ndarray, q1: np.ndarray, n: int, skew: float = 1.0) -> np.ndarray:
    """n samples (excluding q0) of a minimum-jerk move; `skew` > 1 front-loads it (a fast start, a slow homing
    in, as people reach), still at rest at both ends."""
    s = np.linspace(0, 1, n + 1)[1:, None]
    s = 1 - (1 - s) ** skew
    return q0 + (q1 - q0) * (10 * s**3 - 15 * s**4 + 6 * s**5)


@dataclass(frozen=True)
class HumanStyle:
    """How a person demonstrates one episode (drawn per episode by `HumanStyle.draw`)."""

    pace: float  # all durations scaled by this (slow and careful > 1 > brisk)
    skew: float  # velocity profile: 1 symmetric (minimum jerk) .. 2 strongly front-loaded
    pause_p: float  # chance of a pause after each waypoint
    overshoot: float  # m: the approach above the object and above blue goes this far past, then corrects
    above: float  # m: the height the object is approached from
    yaw_error: float  # rad: the hand's yaw at the grasp, off the object's
    grasp_offset: float  # m: the grasp point along the pen (cubes: a fifth of it)
    tremor: float  # rad: standard deviation of the hand-guided arm's low-frequency joint noise

    @classmethod
    def draw(cls, rng: np.random.Generator) -> HumanStyle:
        return cls(
            pace=float(rng.uniform(0.8, 1.3)),
            skew=float(rng.uniform(1.0, 1.8)),
            pause_p=float(rng.uniform(0.0, 0.4)),
            overshoot=float(rng.uniform(0.0, 0.03)),
            above=float(rng.uniform(0.09, 0.16)),
            yaw_error=float(rng.normal(0, 0.06)),
            grasp_offset=float(rng.uniform(-0.02, 0.02)),
            tremor=float(rng.uniform(0.0005, 0.002)),
        )


def humanise(
    route: list[tuple[np.ndarray, float, float, float]], style: HumanStyle, rng: np.random.Generator
) -> list[tuple[np.ndarray, float, float, float]]:
    """The route as `style`'s person walks it: the first approach (and the carry above blue, for place) passes
    the spot by `overshoot` in the direction of travel and comes back; each waypoint's time scaled by the pace
    and jittered; a pause after a waypoint now and then (never with the gripper moving)."""
    out: list[tuple[np.ndarray, float, float, float]] = []
    prev = None
    for i, (pos, yaw, width, seconds) in enumerate(route):
        seconds = seconds * style.pace * rng.uniform(0.85, 1.2)
        travel = np.zeros(3) if prev is None else np.append(pos[:2] - prev[:2], 0.0)
        far = np.linalg.norm(travel) > 0.05 and pos[2] > 0.1  # a long move at carrying height: aimed past
        if (i == 0 or far) and style.overshoot > 0.003:
            direction = travel / max(np.linalg.norm(travel), 1e-9) if far else np.append(rng.normal(0, 1, 2), 0.0)
            direction = direction / max(np.linalg.norm(direction), 1e-9)
            out.append((pos + style.overshoot * direction, yaw, width, seconds))
            seconds = 0.3 + 8.0 * style.overshoot  # the correction
        out.append((pos, yaw, width, seconds))
        gripper_moves = i + 1 < len(route) and route[i + 1][2] != width
        if not gripper_moves and rng.random() < style.pause_p:
            out.append((pos, yaw, width, float(rng.uniform(0.2, 0.8))))
        prev = pos
    return out


def tremor(n: int, rate_hz: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 7) low-frequency joint noise of a hand-guided arm: per joint three sinusoids of 0.3-1.5 Hz at random
    phases, `amplitude` standard deviation, starting and ending at zero (smooth: a few rad/s^2 at most)."""
    t = np.arange(n)[:, None, None] / rate_hz
    f, phase = rng.uniform(0.3, 1.5, (1, 7, 3)), rng.uniform(0, 2 * np.pi, (1, 7, 3))
    x = np.sin(2 * np.pi * f * t + phase).sum(-1) * amplitude * np.sqrt(2 / 3)
    return x * np.sin(np.linspace(0, np.pi, n))[:, None]


def waypoints(
    env: PandaTable,
    task: str,
    rng: np.random.Generator,
    approach_error: float = 0.0,
    style: HumanStyle | None = None,
) -> list[tuple[np.ndarray, float, float, float]]:
    """(EE position, yaw, gripper width, seconds) for the task in the current scene. With `approach_error` (m, the
    standard deviation per horizontal axis) the first approach is aimed that far off and corrected above the object
    before the descent, as a person who misjudged would: the correction is what only the camera can tell. With a
    `style`, the route as that person grasps and walks it (`humanise`)."""
    route = _task_waypoints(env, task, rng, style)
    if style is not None:
        route = humanise(route, style, rng)
    if approach_error <= 0:
        return route
    pos, yaw, width, seconds = route[0]
    error = np.append(np.clip(rng.normal(0, approach_error, 2), -2.5 * approach_error, 2.5 * approach_error), 0.0)
    above = np.array([pos[0], pos[1], max(pos[2] - 0.02, 0.10)])  # fingertips still clear of a cube
    return [(pos + error, yaw, width, seconds), (above, yaw, width, 0.4 + 5.0 * np.linalg.norm(error)), *route[1:]]


def _task_waypoints(
    env: PandaTable, task: str, rng: np.random.Generator, style: HumanStyle | None = None
) -> list[tuple[np.ndarray, float, float, float]]:
    """The task's route, aimed right; a `style` approaches from its own height and grasps with its own yaw error
    and offset (along the pen; a fifth of it on a cube, in a random direction)."""
    lay = env.layout
    jitter = lambda s=0.004: rng.normal(0, s, 3) * np.array([1, 1, 0.3])  # noqa: E731
    up = 0.12 if style is None else style.above
    dyaw = 0.0 if style is None else style.yaw_error
    off = 0.0 if style is None else style.grasp_offset
    cube_off = np.zeros(3) if style is None else np.append(off / 5 * rng.normal(0, 1, 2) / np.sqrt(2), 0.0)

    def grasp_z(center_z: float) -> float:  # site height that puts the pads on an object centre, tips off the table
        return max(center_z + PAD, TABLE_Z + TIP + CLEARANCE)

    if task == "lift the pen":
        yaw = lay.pen[2] + dyaw  # the fingers close along the site y axis, at yaw - pi/2: across the pen
        p = np.array([lay.pen[0] + off * np.cos(lay.pen[2]), lay.pen[1] + off * np.sin(lay.pen[2]), 0.0])
        return [
            (p + [0, 0, up] + jitter(), yaw, MAX_WIDTH, 1.6),
            (p + [0, 0, grasp_z(PEN_RADIUS)], yaw, MAX_WIDTH, 1.0),
            (p + [0, 0, grasp_z(PEN_RADIUS)], yaw, 0.0, 0.7),
            (p + [0, 0, grasp_z(PEN_RADIUS)], yaw, 0.0, 0.3),
            (p + [0, 0, 0.18] + jitter(), yaw, 0.0, 1.3),
        ]
    if task == "slide the cube":  # grasp it and slide it along the table into the zone
        c, z = env.body_pos("red_cube") + cube_off, env.model.site_pos[env.ids.zone][:2]
        yaw = _cube_yaw(env, "red_cube") + dyaw
        h = grasp_z(CUBE) + 0.002
        goal = z + rng.normal(0, 0.008, 2)
        return [
            (np.array([c[0], c[1], up]) + jitter(), yaw, MAX_WIDTH, 1.5),
            (np.array([c[0], c[1], h]), yaw, MAX_WIDTH, 1.0),
            (np.array([c[0], c[1], h]), yaw, 0.0, 0.7),
            (np.array([c[0], c[1], h]), yaw, 0.0, 0.3),
            (np.array([c[0], c[1], h + 0.004]), yaw, 0.0, 0.3),  # just off the table: no friction to tear it away
            (np.array([*goal, h + 0.004]), yaw, 0.0, 0.8 + 5.0 * np.linalg.norm(goal - c[:2])),
            (np.array([*goal, h]), yaw, 0.0, 0.3),
            (np.array([*goal, h]), yaw, MAX_WIDTH, 0.5),
            (np.array([*goal, 0.12]) + jitter(), yaw, MAX_WIDTH, 0.8),
        ]
    if task == "place the cubes":
        r, b = env.body_pos("red_cube") + cube_off, env.body_pos("blue_cube")
        yaw_r = _cube_yaw(env, "red_cube") + dyaw
        yaw_b = _cube_yaw(env, "blue_cube")
        grasp = grasp_z(CUBE)
        return [
            (np.array([r[0], r[1], up]) + jitter(), yaw_r, MAX_WIDTH, 1.5),
            (np.array([r[0], r[1], grasp]), yaw_r, MAX_WIDTH, 1.0),
            (np.array([r[0], r[1], grasp]), yaw_r, 0.0, 0.7),
            (np.array([r[0], r[1], grasp]), yaw_r, 0.0, 0.3),
            (np.array([r[0], r[1], 0.14]), yaw_r, 0.0, 0.9),
            (np.array([b[0], b[1], 0.14]) + jitter(0.002), yaw_b, 0.0, 1.3),
            (np.array([b[0], b[1], 2 * CUBE + CUBE + PAD + 0.004]), yaw_b, 0.0, 1.0),
            (np.array([b[0], b[1], 2 * CUBE + CUBE + PAD + 0.004]), yaw_b, MAX_WIDTH, 0.5),
            (np.array([b[0], b[1], 0.14]), yaw_b, MAX_WIDTH, 0.8),
        ]
    raise ValueError(f"unknown task {task!r}")


def _cube_yaw(env: PandaTable, body: str) -> float:
    quat = env.data.xquat[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_BODY, body)]
    yaw = 2 * np.arctan2(quat[3], quat[0])
    return float((yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4)  # the cube's nearest face pair


def plan(
    env: PandaTable,
    task: str,
    rng: np.random.Generator,
    rate_hz: float,
    approach_error: float = 0.0,
    teacher: str = "scripted",
) -> np.ndarray:
    """A (T, 8) joint-space demonstration at `rate_hz`: arm joints + gripper width targets, by the `teacher`
    (`TEACHERS`); the human one's style is drawn from `rng` (`HumanStyle.draw`)."""
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; teachers: {TEACHERS}")
    style = HumanStyle.draw(rng) if teacher == "human" else None
    q = env.joints()
    width = env.gripper_width()
    out = [np.append(q, width)[None]]
    for pos, yaw, w, seconds in waypoints(env, task, rng, approach_error, style):
        q1 = solve_ik(env, pos, yaw, q)
        n = max(2, int(round(seconds * rng.uniform(0.9, 1.15) * rate_hz)))
        seg_q = min_jerk(q, q1, n, 1.0 if style is None else style.skew)
        seg_w = min_jerk(np.array([width]), np.array([w]), n)
        out.append(np.hstack([seg_q, seg_w]))
        q, width = q1, w
    moving = np.concatenate(out)
    if style is not None:  # the hand on the arm until the end; the final rest is hands off
        moving[:, :7] += tremor(len(moving), rate_hz, style.tremor, rng)
    return np.concatenate([moving, np.repeat(moving[-1:], int(FINAL_REST_S * rate_hz), 0)])


def demonstrate(env: PandaTable, task: str, seed: int, rate_hz: float = 30.0, on_step=None) -> bool:  # noqa: ANN001
    """Run one scripted demonstration from the current state; `on_step(env)` after every control period."""
    rng = np.random.default_rng(seed + 7919)
    targets = plan(env, task, rng, rate_hz)
    for row in targets[1:]:
        env.command(row[:7], row[7])
        env.step(1.0 / rate_hz)
        if on_step is not None:
            on_step(env)
    return env.end_state_success(task)
