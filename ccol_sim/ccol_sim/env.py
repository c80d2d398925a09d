"""Physics of the simulated world: reset from a seed, position control in the real Panda's joint convention,
camera frames, success detection for the three tasks (at an instant, and by the end state a person judges)."""

from __future__ import annotations

import copy

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import mujoco
import numpy as np

from ccol_sim.layouts import DEFAULT_LAYOUT, Layout, sample_layout
from ccol_sim.scene import CUBE, PEN_RADIUS, READY, SIM_TO_REAL, ZONE_HALF, Ids, load_model

TASKS = ("lift the pen", "slide the cube", "place the cubes")
OBJECTS = ("pen", "red_cube", "blue_cube")
TASK_OBJECT = {"lift the pen": "pen", "slide the cube": "red_cube", "place the cubes": "red_cube"}  # grasped first
MAX_WIDTH = 0.08
SETTLE_S = 1.0  # the end-state test of slide and place: the hand opened, this long to settle, then the task's test


def tune_servos(m: mujoco.MjModel) -> None:
    """Stand-in for the Franka's torque-controlled joint servos: stiffer joint position servos on top of the
    links' gravity compensation (`scene.load_model`), so commanded trajectories are tracked within millimetres as
    on the robot."""
    for a, kp in enumerate([4000.0] * 4 + [1500.0] * 3):
        m.actuator_gainprm[a, 0] = kp
        m.actuator_biasprm[a, 1] = -kp
        m.actuator_forcerange[a] = [-300.0, 300.0] if a < 4 else [-60.0, 60.0]
    m.dof_damping[m.jnt_dofadr[[m.actuator_trnid[a, 0] for a in range(7)]]] = [80.0] * 4 + [10.0] * 3
    fingers = m.jnt_dofadr[[m.actuator_trnid[a, 0] for a in (7, 8)]]
    m.dof_damping[fingers] = 5.0  # the Franka Hand closes in well under a second
    m.dof_armature[fingers] = 0.05
    m.actuator_forcerange[7:9] = [-40.0, 40.0]


def _renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as exc:
        raise RuntimeError(
            f"offscreen rendering failed ({exc}); on a machine without a display set MUJOCO_GL=egl (or osmesa) "
            "before starting"
        ) from exc


class PandaTable:
    """One simulated Panda at the table. Joint vectors are in franka_ros2's convention; width in metres."""

    def __init__(self, render_size: tuple[int, int] = (160, 120), fast_render: bool = True) -> None:
        self.model = load_model()
        tune_servos(self.model)
        self.data = mujoco.MjData(self.model)
        self.ids = Ids.of(self.model)
        self.width, self.height = render_size
        self._renderer: mujoco.Renderer | None = None
        self._depth_renderer: mujoco.Renderer | None = None
        self._seg_renderer: mujoco.Renderer | None = None
        self.scene_option = mujoco.MjvOption()
        if fast_render:  # collision meshes (group 3) instead of the detailed visual meshes (group 0)
            self.scene_option.geomgroup[:] = [0, 1, 0, 1, 0, 0]
        self.layout: Layout | None = None
        self.initial: dict[str, np.ndarray] = {}
        body = self.model.geom_bodyid
        name = lambda b: mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_BODY, b) or ""  # noqa: E731
        self._arm_geoms = {g for g in range(self.model.ngeom) if name(body[g]).startswith("panda0_")}
        self._red_geom = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, "red_cube")

    # ------------------------------------------------------------------ state
    def reset(self, seed: int, layout: str = DEFAULT_LAYOUT) -> Layout:
        """The scene of `seed` in `layout` (`ccol_sim.layouts.LAYOUTS`), the arm near the ready pose."""
        rng = np.random.default_rng(seed)
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        lay = sample_layout(rng, layout)
        self.layout = lay
        self._set_free("pen", [lay.pen[0], lay.pen[1], PEN_RADIUS], lay.pen[2])
        self._set_free("red_cube", [*lay.red, CUBE], rng.uniform(-0.3, 0.3))
        self._set_free("blue_cube", [*lay.blue, CUBE], rng.uniform(-0.3, 0.3))
        m.site_pos[self.ids.zone][:2] = lay.zone
        q0 = READY + rng.normal(0, 0.03, 7)
        d.qpos[self.ids.arm_qpos] = q0 - SIM_TO_REAL
        d.qpos[self.ids.finger_qpos] = MAX_WIDTH / 2
        self.command(q0, MAX_WIDTH)
        mujoco.mj_forward(m, d)
        for _ in range(50):  # let objects settle
            mujoco.mj_step(m, d)
        self.initial = {
            "pen": self.body_pos("pen"),
            "red": self.body_pos("red_cube"),
            "blue": self.body_pos("blue_cube"),
        }
        return lay

    def _set_free(self, joint: str, pos: list[float], yaw: float) -> None:
        adr = self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, joint)]
        self.data.qpos[adr : adr + 3] = pos
        self.data.qpos[adr + 3 : adr + 7] = [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]

    def body_pos(self, name: str) -> np.ndarray:
        return self.data.xpos[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)].copy()

    @property
    def time(self) -> float:
        return float(self.data.time)

    def joints(self) -> np.ndarray:
        """(7,) measured arm joint positions, real convention."""
        return self.data.qpos[self.ids.arm_qpos] + SIM_TO_REAL

    def joint_velocities(self) -> np.ndarray:
        """(7,) measured arm joint velocities (rad/s)."""
        return self.data.qvel[self.ids.arm_dof].copy()

    def gripper_width(self) -> float:
        return float(self.data.qpos[self.ids.finger_qpos].sum())

    def qpos8(self) -> np.ndarray:
        return np.append(self.joints(), self.gripper_width())

    def ee_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.ids.ee_site].copy()

    # ------------------------------------------------------------------ control
    def command(self, q: np.ndarray, width: float | None = None) -> None:
        """Position targets for the arm (real convention) and the gripper width."""
        self.data.ctrl[:7] = np.asarray(q[:7]) - SIM_TO_REAL
        if width is not None:
            self.data.ctrl[7:9] = np.clip(width, 0.0, MAX_WIDTH) / 2

    def step(self, seconds: float) -> None:
        n = max(1, int(round(seconds / self.model.opt.timestep)))
        mujoco.mj_step(self.model, self.data, nstep=n)

    # ------------------------------------------------------------------ camera
    def render(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB from the fixed RealSense camera."""
        if self._renderer is None:
            self._renderer = _renderer(self.model, self.height, self.width)
        self._renderer.update_scene(self.data, camera=self.ids.camera, scene_option=self.scene_option)
        return self._renderer.render()

    def render_depth(self) -> np.ndarray:
        """(H, W) float32 metres."""
        if self._depth_renderer is None:
            self._depth_renderer = _renderer(self.model, self.height, self.width)
            self._depth_renderer.enable_depth_rendering()
        self._depth_renderer.update_scene(self.data, camera=self.ids.camera, scene_option=self.scene_option)
        return self._depth_renderer.render().astype(np.float32)

    def object_masks(self) -> dict[str, np.ndarray]:
        """(H, W) bool image region of the pen and of each cube in the camera frame (segmentation render)."""
        if self._seg_renderer is None:
            self._seg_renderer = _renderer(self.model, self.height, self.width)
            self._seg_renderer.enable_segmentation_rendering()
        self._seg_renderer.update_scene(self.data, camera=self.ids.camera, scene_option=self.scene_option)
        seg = self._seg_renderer.render()  # (H, W, 2): object id, object type
        geoms = seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
        masks = {}
        for name in ("pen", "red_cube", "blue_cube"):
            gid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, name)
            masks[name] = geoms & (seg[..., 0] == gid)
        return masks

    def close(self) -> None:
        for r in (self._renderer, self._depth_renderer, self._seg_renderer):
            if r is not None:
                r.close()
        self._renderer = self._depth_renderer = self._seg_renderer = None

    # ------------------------------------------------------------------ tasks
    def success(self, task: str) -> bool:
        """The task's test now (the instant it first passes is the "first-instant" figure)."""
        return self._test(task, self.data)

    def end_state_success(self, task: str) -> bool:
        """The task's test on the state an episode ends in, as a person watching judges it. Lift: the pen is up now
        (still held). Slide and place: on a copy of the world (the live one is left as it is) the hand opens, the
        arm holds its targets for `SETTLE_S`, then the task's test passes with no part of the arm touching the red
        cube: it rests there by itself."""
        if task == "lift the pen":
            return self._test(task, self.data)
        d = copy.copy(self.data)
        d.ctrl[7:9] = MAX_WIDTH / 2
        mujoco.mj_step(self.model, d, nstep=int(round(SETTLE_S / self.model.opt.timestep)))
        return self._test(task, d) and not self._arm_touches_red(d)

    def _arm_touches_red(self, d: mujoco.MjData) -> bool:
        pairs = zip(d.contact.geom1[: d.ncon].tolist(), d.contact.geom2[: d.ncon].tolist(), strict=True)
        return any(
            (a == self._red_geom and b in self._arm_geoms) or (b == self._red_geom and a in self._arm_geoms)
            for a, b in pairs
        )

    def _test(self, task: str, d: mujoco.MjData) -> bool:
        pen, red, blue = (d.xpos[b] for b in (self.ids.pen, self.ids.red, self.ids.blue))
        if task == "lift the pen":
            return bool(pen[2] > self.initial["pen"][2] + 0.08)
        if task == "slide the cube":
            zone = self.model.site_pos[self.ids.zone][:2]
            return bool(np.all(np.abs(red[:2] - zone) < ZONE_HALF) and red[2] < 2 * CUBE)
        if task == "place the cubes":
            return bool(np.linalg.norm(red[:2] - blue[:2]) < 0.03 and abs(red[2] - blue[2] - 2 * CUBE) < 0.01)
        raise ValueError(f"unknown task {task!r}; tasks: {TASKS}")
