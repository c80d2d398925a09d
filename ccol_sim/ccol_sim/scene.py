"""The MuJoCo table-top scene: the Franka Panda of gymnasium-robotics' kitchen assets (loaded from the installed
package, no download), a table, a fixed "RealSense" camera, a pen, a red and a blue cube and a green target zone.

The asset model's joints 4 and 6 are offset from the real Panda's convention; `SIM_TO_REAL` maps the simulated
joint angles to franka_ros2's, so the simulated `/joint_states` match the real robot's.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import mujoco
import numpy as np

TABLE_Z = 0.0  # the table top is the world's z = 0; the robot base sits on it
CUBE = 0.02  # half size (m)
PEN_RADIUS, PEN_HALF_LENGTH = 0.011, 0.07
ZONE_HALF = 0.05
# joint 6 of the asset model is rotated by pi/2 against the real Panda (euler 1.57 on link6)
SIM_TO_REAL = np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.pi / 2, 0.0])
READY = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])  # franka_ros2 "ready" pose (real convention)


def franka_assets_dir() -> Path:
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the Panda model comes from gymnasium-robotics: pip install gymnasium-robotics")
    path = Path(list(spec.submodule_search_locations)[0]) / "envs" / "assets" / "kitchen_franka" / "franka_assets"
    if not (path / "chain.xml").is_file():
        raise FileNotFoundError(f"gymnasium-robotics is installed but {path}/chain.xml is missing")
    return path


SCENE = """
<mujoco model="ccol_table">
  <include file="assets.xml"/>
  <!-- noslip: soft contacts let a held pen creep out of the closed fingers within 10 s (the Franka Hand's 70 N
       grasp holds it); two no-slip iterations keep it where it was grasped -->
  <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="10" noslip_iterations="2"/>
  <visual>
    <global offwidth="1280" offheight="960"/>
    <!-- no 4x multisampling: half the render time; frames are downsampled to the policy's size anyway -->
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.5 0.5 0.5" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <asset>
    <material name="table" rgba="0.55 0.42 0.3 1"/>
  </asset>
  <worldbody>
    <light directional="true" pos="0 0 2" dir="0 0 -1" diffuse="0.5 0.5 0.5" castshadow="false"/>
    <geom name="table" type="box" pos="0.5 0 -0.02" size="0.7 0.7 0.02" material="table" group="1"/>
    <body name="panda_base" pos="0 0 0">
      <include file="chain.xml"/>
    </body>
    <site name="zone" type="box" pos="0.5 0.2 0.0005" size="{zone} {zone} 0.0005" rgba="0.2 0.7 0.2 1" group="1"/>
    <body name="pen" pos="0.5 0 {pen_r}">
      <freejoint name="pen"/>
      <geom name="pen" type="capsule" size="{pen_r} {pen_l}" euler="0 1.5708 0" rgba="0.95 0.95 0.95 1" mass="0.03"
            friction="1.5 0.01 0.001" condim="4" group="1"/>
    </body>
    <body name="red_cube" pos="0.4 -0.1 {cube}">
      <freejoint name="red_cube"/>
      <geom name="red_cube" type="box" size="{cube} {cube} {cube}" rgba="0.85 0.15 0.15 1" mass="0.05"
            friction="1.5 0.01 0.001" condim="4" group="1"/>
    </body>
    <body name="blue_cube" pos="0.6 -0.1 {cube}">
      <freejoint name="blue_cube"/>
      <geom name="blue_cube" type="box" size="{cube} {cube} {cube}" rgba="0.15 0.25 0.85 1" mass="0.05"
            friction="1.5 0.01 0.001" condim="4" group="1"/>
    </body>
    <camera name="realsense" pos="0.85 0.0 0.55" xyaxes="0 1 0 -0.844 0 0.537" fovy="42"/>
  </worldbody>
  <include file="actuator.xml"/>
</mujoco>
"""


def load_model() -> mujoco.MjModel:
    """Compile the scene; the asset includes resolve against a temporary directory linking the Panda assets.

    The arm's links get gravity compensation, as the Franka's own controller gives every joint command. It must be
    set before compiling: MuJoCo counts the compensated bodies at compile time (`ngravcomp`) and ignores
    `body_gravcomp` set on a compiled model."""
    xml = SCENE.format(zone=ZONE_HALF, pen_r=PEN_RADIUS, pen_l=PEN_HALF_LENGTH, cube=CUBE)
    root = franka_assets_dir()
    with tempfile.TemporaryDirectory(prefix="ccol_sim_") as tmp:
        for name in ("assets.xml", "chain.xml", "actuator.xml"):
            (Path(tmp) / name).symlink_to(root / name)
        (Path(tmp) / "franka_assets").symlink_to(root)
        (Path(tmp) / "scene.xml").write_text(xml)
        spec = mujoco.MjSpec.from_file(str(Path(tmp) / "scene.xml"))
        for body in spec.bodies:
            if body.name.startswith("panda0_"):
                body.gravcomp = 1.0
        return spec.compile()


@dataclass(frozen=True)
class Ids:
    arm_qpos: np.ndarray  # qpos addresses of the 7 arm joints
    finger_qpos: np.ndarray  # of the 2 finger joints
    arm_dof: np.ndarray
    ee_site: int
    pen: int
    red: int
    blue: int
    zone: int
    camera: int

    @classmethod
    def of(cls, m: mujoco.MjModel) -> Ids:
        def jq(name: str) -> int:
            return int(m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)])

        def jd(name: str) -> int:
            return int(m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)])

        arm = [f"robot:panda0_joint{i}" for i in range(1, 8)]
        return cls(
            arm_qpos=np.array([jq(n) for n in arm]),
            finger_qpos=np.array([jq("robot:panda0_finger_joint1"), jq("robot:panda0_finger_joint2")]),
            arm_dof=np.array([jd(n) for n in arm]),
            ee_site=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "end_effector"),
            pen=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "pen"),
            red=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "red_cube"),
            blue=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "blue_cube"),
            zone=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "zone"),
            camera=mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, "realsense"),
        )
