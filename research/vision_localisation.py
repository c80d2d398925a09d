"""How well can a vision pathway, trained from scratch, tell where to grasp? Measured on simulator scenes.

    .venv/bin/python research/vision_localisation.py                 # 54 and 150 training scenes
    .venv/bin/python research/vision_localisation.py --train 54 150 600 --steps 1500
    .venv/bin/python research/vision_localisation.py --train 300 --kinds conditioned --image-size 128 --patch-size 16

For each scene (seeded like `ccol demo`'s, the task by seed as there): the first camera frame (64x64 unless
--image-size; ready pose, the arm out of view) and the scripted teacher's joint target at the moment the gripper
starts to close (the grasp pose). Pathways of the `small_cpu` vision encoder regress the grasp pose from the frame
and the task; the figure is the end-effector xy error (forward kinematics) of the predicted pose on 200 held-out
scenes, next to an oracle that is given the true object position. Used to choose the keypoint token and to test
sharper frames (README, "What moved success"); nothing here reaches a policy.
"""

from __future__ import annotations

import argparse
import time

import ccol_sim.gl  # noqa: F401 - picks an offscreen GL backend before MuJoCo loads one

# isort: split
import mujoco
import numpy as np
import torch
from torch import nn

from ccol_policy.bags import resize
from ccol_policy.config import load_config, resolve_preset
from ccol_policy.model.vision import VisionEncoder
from ccol_sim.env import TASKS, PandaTable
from ccol_sim.scene import SIM_TO_REAL
from ccol_sim.teacher import plan

TEST = 200


def scenes(n: int, size: int, layout: str = "wide") -> dict[str, np.ndarray]:
    """n scenes of `layout` ("wide": the layout of the measurements in docs/experiments.md)."""
    env = PandaTable(render_size=(160, 120))
    images, grasp, task, target_xy = [], [], [], []
    for s in range(n):
        env.reset(s, layout=layout)
        images.append(resize(env.render(), size, size))
        targets = plan(env, TASKS[s % 3], np.random.default_rng(s + 7919), 30.0)
        grasp.append(targets[int(np.argmax(targets[:, 7] < 0.04)), :7])  # first step of closing
        task.append(s % 3)
        target_xy.append(env.body_pos("pen" if s % 3 == 0 else "red_cube")[:2])
    env.close()
    return {"images": np.array(images), "grasp": np.array(grasp), "task": np.array(task), "xy": np.array(target_xy)}


class Pathway(nn.Module):
    """`tokens`: a task query attends over the encoder's tokens (patches + keypoint token), then an MLP;
    `oracle`: an MLP of the true object xy and the task."""

    def __init__(self, kind: str, cfg_vision, dim: int = 64) -> None:  # noqa: ANN001
        super().__init__()
        self.kind = kind
        self.task = nn.Embedding(3, dim)
        if kind != "oracle":
            self.vision = VisionEncoder(cfg_vision, condition_dim=dim if kind == "conditioned" else 0)
            self.attend = nn.MultiheadAttention(cfg_vision.hidden_size, 2, batch_first=True)
            self.query = nn.Linear(dim, cfg_vision.hidden_size)
            width = cfg_vision.hidden_size
        else:
            width = 2 + dim
        self.head = nn.Sequential(nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 7))

    def forward(self, images: torch.Tensor, task: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        t = self.task(task)
        if self.kind == "oracle":
            return self.head(torch.cat([xy, t], 1))
        tokens = self.vision(images, None, t if self.kind == "conditioned" else None)
        pooled, _ = self.attend(self.query(t).unsqueeze(1), tokens, tokens)
        return self.head(pooled[:, 0])


def fk_xy(env: PandaTable, q: np.ndarray) -> np.ndarray:
    d = mujoco.MjData(env.model)
    d.qpos[env.ids.arm_qpos] = q - SIM_TO_REAL
    mujoco.mj_kinematics(env.model, d)
    return d.site_xpos[env.ids.ee_site][:2].copy()


def run(
    kind: str, data: dict[str, torch.Tensor], n_train: int, steps: int, keypoints: int, size: int, patch: int
) -> np.ndarray:
    torch.manual_seed(0)
    over = {"vision.keypoints": keypoints, "vision.image_size": size, "vision.patch_size": patch}
    cfg = load_config(resolve_preset("small_cpu"), overrides=over)
    model = Pathway(kind, cfg.vision)
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    mean, std = data["grasp"][:n_train].mean(0), data["grasp"].std(0)
    y = (data["grasp"] - mean) / std
    for _ in range(steps):
        model.train()
        i = torch.randint(0, n_train, (32,))
        loss = (model(data["images"][i], data["task"][i], data["xy"][i]) - y[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        test = slice(-TEST, None)
        return (model(data["images"][test], data["task"][test], data["xy"][test]) * std + mean).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, nargs="+", default=[54, 150], help="training scenes")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--kinds", nargs="+", default=["oracle", "patches", "token", "conditioned"])
    p.add_argument("--image-size", type=int, default=64, help="frames rendered at 160x120, resized to this square")
    p.add_argument("--patch-size", type=int, default=8)
    args = p.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    raw = scenes(max(args.train) + TEST, args.image_size)
    print(f"{len(raw['task'])} scenes in {time.perf_counter() - t0:.0f} s")
    data = {
        "images": torch.from_numpy(raw["images"]).permute(0, 3, 1, 2).unsqueeze(1).contiguous(),
        "grasp": torch.from_numpy(raw["grasp"]).float(),
        "task": torch.from_numpy(raw["task"]),
        "xy": torch.from_numpy((raw["xy"] - raw["xy"].mean(0)) / raw["xy"].std(0)).float(),
    }
    env = PandaTable()
    truth = [fk_xy(env, q) for q in raw["grasp"][-TEST:]]
    print(
        "| pathway | image / patch | training scenes | median EE xy error (cm) | p90 (cm) | within 1.5 cm "
        "| median per task (cm) | s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    test_task = raw["task"][-TEST:]
    for n in args.train:
        for kind in args.kinds:
            # patches: patch tokens only; token: + one keypoint token; conditioned: the keypoint token sees the task
            t1 = time.perf_counter()
            pred = run(kind, data, n, args.steps, 0 if kind == "patches" else 16, args.image_size, args.patch_size)
            err = 100 * np.array([np.linalg.norm(fk_xy(env, q) - t) for q, t in zip(pred, truth)])
            print(
                f"| {kind} | {args.image_size} / {args.patch_size} | {n} | {np.median(err):.2f} "
                f"| {np.percentile(err, 90):.2f} | {(err < 1.5).mean():.0%} "
                f"| {' / '.join(f'{np.median(err[test_task == k]):.2f}' for k in range(3))} "
                f"| {time.perf_counter() - t1:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
