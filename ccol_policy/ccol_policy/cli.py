"""`ccol`: the offline verbs of the stack (train, build-dataset, eval-bag, ...; sim-eval, demo, ... from ccol_sim)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

from ccol_policy.control import DEFAULT_CONTROL_RATE_HZ

log = logging.getLogger("ccol")

# Other packages add verbs here: an entry point in this group names a function `register(subparsers)` that adds
# its sub-commands and may fill the hooks of the verbs below (None without it): `replay_in_sim(args)` (replay
# without --robot), `check_episodes(paths, progress)` (after build-dataset), `scene_regions` (eval-bag --sim-scene).
# ccol_sim registers its commands so; this package never imports it.
COMMANDS_GROUP = "ccol.commands"


def _config_from_args(args: argparse.Namespace):
    from ccol_policy.config import load_config, parse_overrides, resolve_preset

    sources = [resolve_preset(args.config)] + [Path(p) for p in args.extra_config]
    return load_config(*sources, overrides=parse_overrides(args.set), ablation=args.ablation)


def _add_config_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--config", default=default, help=f"preset name in models/ or a YAML file (default {default})")
    p.add_argument("--extra-config", action="append", default=[], metavar="YAML", help="further YAML merged on top")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. optim.lr=1e-4")
    p.add_argument(
        "--ablation",
        default=None,
        help="paper Table 4 variant: full, wo_mcc, wo_csa, wo_disc, csa_no_att, tcn, tcn_no_mcc, act",
    )


def cmd_train(args: argparse.Namespace) -> int:
    from ccol_policy.training import train

    cfg = _config_from_args(args)
    result = train(cfg, args.data, args.out, device=args.device, resume=args.resume, progress=not args.no_progress)
    log.info(
        "trained %d steps, best validation L1 %.4f, %.1f samples/s; checkpoint: %s",
        result.step,
        result.best_val_l1,
        result.samples_per_s,
        result.out_dir / "best",
    )
    return 0


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from ccol_policy.synthetic import make_dataset

    paths = make_dataset(args.out, args.episodes_per_task, seed=args.seed, image_size=args.image_size)
    log.info("wrote %d synthetic episodes to %s", len(paths), args.out)
    return 0


def cmd_synthetic_demo(args: argparse.Namespace) -> int:
    from ccol_policy.synthetic_demo import run_demo

    run_demo(Path(args.out), steps=args.steps, episodes_per_task=args.episodes_per_task, ablation=args.ablation)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ccol_policy.config import preset_chunk_size

    if args.chunk is None:
        args.chunk = preset_chunk_size()
    if args.robot:
        from ccol_policy.replay_node import replay_on_robot

        return replay_on_robot(args)
    if args.replay_in_sim is None:
        raise ValueError("replay in the simulator needs the ccol_sim package (pip install -e ccol_sim); or use --robot")
    return args.replay_in_sim(args)


def _add_bag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arm-id",
        default=None,
        help="fr3 or panda (joint names <arm_id>_joint1..7); default: each bag's episode.json, else fr3",
    )
    p.add_argument("--joint-states-topic", default="", help="default: the driver's (/franka/joint_states)")
    p.add_argument("--gripper-topic", default="", help="default: the driver's (/franka_gripper/joint_states)")
    p.add_argument("--color-topic", default="/camera/camera/color/image_raw")
    p.add_argument("--depth-topic", default="/camera/camera/aligned_depth_to_color/image_raw")
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        help="control rate of the time grid (Hz; build-dataset: 30, eval-bag: the checkpoint's)",
    )
    p.add_argument("--max-image-age", type=float, default=0.1, help="oldest image allowed at a grid time (s)")
    p.add_argument("--max-joint-gap", type=float, default=0.1, help="largest joint-state gap allowed (s)")
    p.add_argument(
        "--max-gripper-gap", type=float, default=0.25, help="largest gripper-state gap allowed (s; 15 Hz on the FR3)"
    )
    p.add_argument("--no-gripper", action="store_true", help="7-D joint positions only")
    p.add_argument("--depth", action="store_true", help="also use aligned depth")
    p.add_argument("--instruction", default=None, help="for bags that carry none (plain `ros2 bag record`)")


def _bag_config(args: argparse.Namespace, image_size: str = "224x224"):
    from ccol_policy.bags import BagTopics, SyncConfig

    w, h = (int(x) for x in image_size.lower().split("x"))
    topics = BagTopics(
        arm_id=args.arm_id or "fr3",
        joint_states=args.joint_states_topic,
        gripper=None if args.no_gripper else args.gripper_topic,
        color=args.color_topic,
        depth=args.depth_topic,
    )
    cfg = SyncConfig(
        control_rate_hz=args.rate or DEFAULT_CONTROL_RATE_HZ,
        max_image_age_s=args.max_image_age,
        max_joint_gap_s=args.max_joint_gap,
        max_gripper_gap_s=args.max_gripper_gap,
        image_width=w,
        image_height=h,
        use_depth=args.depth,
        use_gripper=not args.no_gripper,
    )
    return topics, cfg


def cmd_build_dataset(args: argparse.Namespace) -> int:
    from ccol_policy.dataset_builder import build_dataset, summary_table

    topics, cfg = _bag_config(args, args.image_size)
    rows = build_dataset(
        args.bags,
        args.out,
        topics,
        cfg,
        instruction=args.instruction,
        include_failures=args.include_failures,
        progress=not args.no_progress,
        arm_id_from_bag=args.arm_id is None,
    )
    log.info("build-dataset summary:\n%s", summary_table(rows))
    ok = [Path(args.out) / r.output for r in rows if r.status == "ok"]
    if ok and args.check_episodes is not None:  # the simulator's: labels of simulator episodes in their scenes
        args.check_episodes(ok, progress=not args.no_progress)
    return 0 if ok else 1


def cmd_export_lerobot(args: argparse.Namespace) -> int:
    import tempfile

    from ccol_policy.lerobot import VideoCodec, export_lerobot

    codec = VideoCodec(vcodec=args.vcodec, crf=args.crf)
    source = Path(args.dataset)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: not a directory of HDF5 episodes or of episode bags")
    with tempfile.TemporaryDirectory(prefix="ccol_export_") as tmp:
        if not (any(source.glob("*.hdf5")) or any(source.glob("*.h5"))):  # episode bags: build the episodes first
            from ccol_policy.dataset_builder import build_dataset, summary_table

            topics, cfg = _bag_config(args, args.image_size)
            rows = build_dataset(
                [source], tmp, topics, cfg, instruction=args.instruction, progress=not args.no_progress
            )
            log.info("built from bags:\n%s", summary_table(rows))
            if not any(r.status == "ok" for r in rows):
                raise ValueError(f"no bag in {source} could be built into an episode (reasons above)")
            source = Path(tmp)
        summary = export_lerobot(
            source,
            args.out,
            fps=args.rate,
            default_instruction=args.instruction,
            codec=codec,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            image_format=args.images,
        )
    log.info(
        "wrote LeRobotDataset v3.0 to %s: %d episodes, %d frames at %d fps, cameras %s, tasks %s",
        summary.out_dir,
        summary.episodes,
        summary.frames,
        summary.fps,
        summary.cameras,
        summary.tasks,
    )
    return 0


def cmd_eval_bag(args: argparse.Namespace) -> int:
    from ccol_policy.bags import find_bags
    from ccol_policy.eval_bag import comparison_table, evaluate

    checkpoints: dict[str, str] = {}
    for item in args.checkpoint:
        name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
        p = Path(path)
        checkpoints[name or (p.parent.name if p.name in ("best", "latest") else p.name)] = path
    topics, _ = _bag_config(args)
    regions = None
    if args.sim_scene:
        if args.scene_regions is None:
            raise ValueError("--sim-scene needs the ccol_sim package (pip install -e ccol_sim)")
        regions = args.scene_regions
    report = evaluate(
        checkpoints,
        find_bags(args.bags),
        Path(args.out),
        topics,
        instruction=args.instruction,
        device=args.device,
        rate_hz=args.rate,
        attention_steps=args.attention_steps,
        max_image_age_s=args.max_image_age,
        max_joint_gap_s=args.max_joint_gap,
        max_gripper_gap_s=args.max_gripper_gap,
        progress=not args.no_progress,
        regions=regions,
    )
    log.info(
        "evaluation (%d bag(s) skipped):\n%s\nreport: %s",
        len(report["skipped"]),
        comparison_table(report),
        Path(args.out) / "report.md",
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ccol_policy.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    n = sum(p.numel() for p in ckpt.model.parameters())
    print(json.dumps({"parameters": n, "instructions": ckpt.instructions, "meta": ckpt.meta}, indent=1))  # noqa: T201
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccol", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a policy from HDF5 episodes (torchrun-compatible)")
    p.add_argument("data", nargs="+", help="dataset directories of *.hdf5 episodes or LeRobot (v3.0, v2.1) data sets")
    p.add_argument("--out", required=True, help="output directory (latest/, best/, logs)")
    _add_config_args(p, "paper_vit_b")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest exactly")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("build-dataset", help="recorded rosbag2 bags -> HDF5 training episodes")
    p.add_argument("bags", nargs="+", help="bag directories or directories of bags (the recorder's output_dir)")
    p.add_argument("--out", required=True, help="dataset directory")
    p.add_argument("--image-size", default="224x224", help="WxH of the stored images")
    p.add_argument("--include-failures", action="store_true", help="keep episodes marked unsuccessful")
    p.add_argument("--no-progress", action="store_true")
    _add_bag_args(p)
    p.set_defaults(func=cmd_build_dataset, check_episodes=None)

    p = sub.add_parser(
        "export-lerobot",
        help="HDF5 episodes (or episode bags, built first) -> a LeRobotDataset v3.0 (parquet + mp4) for LeRobot",
    )
    p.add_argument("dataset", help="dataset directory of *.hdf5 episodes, or a directory of episode bags")
    p.add_argument("--out", required=True, help="LeRobot dataset directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--vcodec", default="libsvtav1", help="video codec (LeRobot's default libsvtav1, or h264)")
    p.add_argument("--crf", type=int, default=30, help="video quality (lower is closer to the original frames)")
    p.add_argument(
        "--images",
        choices=("video", "png"),
        default="video",
        help="cameras as mp4 video (default) or as PNG in the data parquet (LeRobot's `image` features: no video "
        "decoder needed to read them)",
    )
    p.add_argument("--image-size", default="224x224", help="bags: WxH of the stored images")
    p.add_argument("--no-progress", action="store_true")
    _add_bag_args(p)
    p.set_defaults(func=cmd_export_lerobot)

    p = sub.add_parser("eval-bag", help="replay bags through checkpoints: accuracy, smoothness, latency, attention")
    p.add_argument("bags", nargs="+", help="bag directories or directories of bags")
    p.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        metavar="[NAME=]DIR",
        help="checkpoint directory; repeat to compare several",
    )
    p.add_argument("--out", default="runs/eval", help="report directory")
    p.add_argument("--device", default="auto")
    p.add_argument("--attention-steps", type=int, default=4, help="steps drawn as attention maps")
    p.add_argument(
        "--sim-scene",
        action="store_true",
        help="simulator bags: measure each noun's attention on its object (scene rebuilt from the bag's seed)",
    )
    p.add_argument("--no-progress", action="store_true")
    _add_bag_args(p)
    p.set_defaults(func=cmd_eval_bag, scene_regions=None)

    p = sub.add_parser("make-synthetic", help="write the synthetic three-task data set")
    p.add_argument("--out", required=True)
    p.add_argument("--episodes-per-task", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=64)
    p.set_defaults(func=cmd_make_synthetic)

    p = sub.add_parser("synthetic-demo", help="the same loop on 2-D synthetic data without MuJoCo (minutes)")
    p.add_argument("--out", default="runs/synthetic_demo")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--episodes-per-task", type=int, default=10)
    p.add_argument("--ablation", default=None)
    p.set_defaults(func=cmd_synthetic_demo)

    p = sub.add_parser(
        "replay",
        help="replay recorded episodes (HDF5 or episode bags) open loop through the policy's command path: "
        "in the simulator (success per episode) or on the robot (--robot, dry run unless --execute)",
    )
    p.add_argument("episodes", nargs="+", help="HDF5 episodes, dataset directories or episode bags")
    p.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_CONTROL_RATE_HZ,
        help="control rate for bags and for HDF5 episodes that carry none (Hz)",
    )
    p.add_argument(
        "--arm-id",
        default=None,
        help="the arm (fr3, panda): joint names in bags and, with --robot, the robot commanded; default: the "
        "episodes' own (HDF5 attrs, episode.json), else fr3 (the simulator: panda)",
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=None,
        help="labels handed to the executor per control period (default: the small_cpu preset's chunk_size)",
    )
    p.add_argument("--execution-mode", default="chunk", choices=["chunk", "ensemble"])
    p.add_argument("--out", default="", help="write the per-episode results as JSON")
    p.add_argument("--workers", type=int, default=0, help="simulator processes (default: one per core)")
    p.add_argument("--robot", action="store_true", help="publish to the robot's controller instead of the sim")
    p.add_argument("--execute", action="store_true", help="with --robot: really command the controller")
    p.add_argument("--trajectory-topic", default="/joint_trajectory_controller/joint_trajectory")
    p.add_argument("--joint-states-topic", default="/franka/joint_states")
    p.add_argument(
        "--table-z", type=float, default=0.0, help="with --robot: table top in the base frame (m), the fingertip floor"
    )
    p.add_argument("--no-fingertip-floor", action="store_true", help="with --robot: let targets reach below table_z")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_replay, replay_in_sim=None)

    p = sub.add_parser("info", help="describe a checkpoint")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)

    for entry in entry_points(group=COMMANDS_GROUP):  # the simulator's verbs (ccol_sim/setup.py)
        entry.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from ccol_policy.checkpoint import CheckpointError
    from ccol_policy.data import DatasetError

    try:
        return args.func(args)
    except (DatasetError, CheckpointError, FileNotFoundError, ValueError) as exc:
        if args.verbose:
            raise
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; the last saved checkpoint is intact (resume with --resume)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
