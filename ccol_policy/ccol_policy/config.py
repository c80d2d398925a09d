"""Configuration of the CCoL stack: one dataclass per concern, loaded from and saved to YAML.

A full configuration (`CCoLConfig`) is saved next to every checkpoint, so a checkpoint alone says how it was
built. Presets live in `models/*.yaml` at the repository root; `load_config` merges a preset, further YAML files
and `key.sub=value` overrides, and rejects unknown keys by name.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class VisionConfig:
    """ViT image encoder (paper: "Vision Encoder"). Patch tokens feed the fusion."""

    pretrained: str | None = None  # hub name ("google/vit-base-patch16-224") or local directory; None: random init
    cameras: list[str] = field(default_factory=lambda: ["color"])
    image_size: int = 224  # square input; frames are resized to this before the ViT
    patch_size: int = 16
    stem: str = "patch"  # "patch": the ViT's linear patch embedding; "conv": 3x3 stride-2 convolutions of the
    # same total stride (Xiao et al. 2021, "Early convolutions help transformers see better"), for ViTs trained
    # from scratch on few images (random-init only; a pretrained ViT keeps its patch embedding)
    random_shift: int = 0  # training augmentation: random translation by up to this many pixels (DrQ); 0: off
    keypoints: int = 0  # with the conv stem: K spatial-softmax keypoints (x, y of K learnt maps), one token
    hidden_size: int = 384  # d_v (ViT-S: 384, ViT-B: 768)
    num_layers: int = 12
    num_heads: int = 6
    intermediate_size: int = 1536
    freeze: bool = False  # paper's "ViT-B frozen" variant
    use_depth: bool = False  # RGB-D: depth as a 4th input channel
    depth_max_m: float = 2.0  # depth is clipped to [0, depth_max_m] metres and scaled to [0, 1]
    image_mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    image_std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])


@dataclass
class TextConfig:
    """RoBERTa instruction encoder (paper: "Text Encoder"). Always frozen; embeddings are cached per instruction."""

    pretrained: str | None = None  # hub name ("roberta-base") or local directory; None: random init + word vocab
    hidden_size: int = 768  # d_l
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_length: int = 32  # instruction tokens kept (including <s> and </s>)
    vocab: list[str] = field(default_factory=list)  # word vocabulary of a from-scratch encoder (no `pretrained`)


@dataclass
class ODEConfig:
    """NeuralODE of the latent (paper eq. 6): z(t) = z0 + int_0^t f(z, s) ds, solved by `torchdiffeq.odeint`."""

    solver: str = "dopri5"  # Dormand-Prince; any torchdiffeq method ("rk4", "euler", ...) is accepted
    step_size: float = 0.0  # fixed-grid solvers (rk4, euler, midpoint): integration step; 0: the grid spacing
    rtol: float = 1e-3
    atol: float = 1e-4
    time_points: int = 2  # paper: "evaluates solutions at two discrete time points"
    step: float = 2.0  # spacing of the time grid (paper Fig. 5: 2.0 best); one time unit = one control period
    adjoint: bool = False  # odeint_adjoint: O(1) memory in the number of solver steps
    hidden_size: int = 256  # width of the residual-MLP vector field f(z, t)
    num_blocks: int = 2

    def grid_offsets(self) -> list[int]:
        """Control periods from the current step to the grid's later time points, rounded to whole periods and
        without repeats (E_disc's samples: the encoder's latents exist once per control period)."""
        return sorted({max(1, round(i * self.step)) for i in range(1, self.time_points)})


@dataclass
class ModelConfig:
    """CCoL policy (ODE-CVAE + CSA). The ablation switches of the paper's Table 4 are fields here."""

    state_dim: int = 8  # proprioception: 7 joint positions + gripper width (Panda)
    action_dim: int = 8  # action: 7 future joint positions + gripper width
    chunk_size: int = 50  # k
    hidden_dim: int = 512  # h, the shared embedding dimension (eq. 7)
    latent_dim: int = 32  # dimension of z
    num_heads: int = 8
    dim_feedforward: int = 3200
    dropout: float = 0.1
    proprio_encoder: str = "transformer"  # "transformer" or "tcn" (Table 4: "w TCN")
    proprio_layers: int = 4
    fusion_layers: int = 4  # CSA blocks (or self-attention encoder layers without CSA)
    decoder_layers: int = 1
    use_mcc: bool = True  # multimodal continuous co-learning: the latent NeuralODE (Table 4: "w/o MCC")
    use_csa: bool = True  # cross-modal semantic-physical alignment (Table 4: "w/o CSA")
    csa_mode: str = "attention"  # "attention" or "avgpool" (Table 4: "w CSA_no att")
    ode: ODEConfig = field(default_factory=ODEConfig)


@dataclass
class LossConfig:
    """Loss of eq. 12-14: reconstruction + kl_weight * KL + disc_weight * E_disc."""

    recon: str = "l1"  # "l1" or "l2"
    reduction: str = "mean"  # recon over a chunk: "mean" over B*k*A entries (ACT) or "sum" over k*A (eq. 3)
    kl_weight: float = 10.0
    kl_warmup_steps: int = 0  # the KL weight ramps linearly from 0 over these steps (0: constant)
    disc_weight: float = 1.0  # 0 gives Table 4's "w/o E_disc"


@dataclass
class DataConfig:
    """Episodes and how samples are drawn from them."""

    val_fraction: float = 0.1  # fraction of episodes held out (split by episode, seeded)
    num_workers: int = 2
    cache_images: bool = False  # decode every image once into shared memory (small data sets)
    default_instruction: str | None = None  # for episodes without one (e.g. plain ACT/ALOHA episodes)
    # An episode ends at rest: its last action, repeated past the end, counts in the loss as "hold". ACT (and the
    # paper) mask it out, which leaves a policy nothing learnt for after the task is done: it drifts and undoes
    # the task (docs/learning_curve.md, "success that lasts"). False: ACT's mask.
    rest_after_end: bool = True


@dataclass
class OptimConfig:
    """Optimisation; defaults are the paper's (SGD, lr 1e-5, momentum 0.9, batch 8)."""

    optimizer: str = "sgd"  # "sgd" or "adamw"
    lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 8
    grad_clip: float = 10.0  # max global grad norm; 0 disables
    schedule: str = "constant"  # "constant" or "cosine"
    warmup_steps: int = 0


@dataclass
class TrainConfig:
    """Training loop."""

    steps: int = 100_000
    eval_every: int = 2_000
    save_every: int = 2_000
    log_every: int = 50
    val_batches: int = 20  # batches per validation pass
    seed: int = 0
    precision: str = "fp32"  # "fp32", "bf16" or "fp16" (GPU only)
    compile: bool = False  # torch.compile the model


@dataclass
class CCoLConfig:
    """Everything needed to rebuild a policy and reproduce its training."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def validate(self) -> None:
        """Raise ValueError naming the field for values that cannot work."""
        m = self.model
        checks = [
            (m.proprio_encoder in ("transformer", "tcn"), "model.proprio_encoder must be 'transformer' or 'tcn'"),
            (m.csa_mode in ("attention", "avgpool"), "model.csa_mode must be 'attention' or 'avgpool'"),
            (m.hidden_dim % m.num_heads == 0, "model.hidden_dim must be divisible by model.num_heads"),
            (m.chunk_size >= 1, "model.chunk_size must be >= 1"),
            (m.ode.time_points >= 2, "model.ode.time_points must be >= 2"),
            (m.ode.step > 0, "model.ode.step must be > 0"),
            (self.loss.recon in ("l1", "l2"), "loss.recon must be 'l1' or 'l2'"),
            (self.loss.reduction in ("mean", "sum"), "loss.reduction must be 'mean' or 'sum'"),
            (self.loss.kl_warmup_steps >= 0, "loss.kl_warmup_steps must be >= 0"),
            (self.optim.optimizer in ("sgd", "adamw"), "optim.optimizer must be 'sgd' or 'adamw'"),
            (self.optim.schedule in ("constant", "cosine"), "optim.schedule must be 'constant' or 'cosine'"),
            (self.train.precision in ("fp32", "bf16", "fp16"), "train.precision must be fp32, bf16 or fp16"),
            (len(self.vision.cameras) >= 1, "vision.cameras must name at least one camera"),
            (
                self.vision.image_size % self.vision.patch_size == 0,
                "vision.image_size must be a multiple of patch_size",
            ),
            (0.0 <= self.data.val_fraction < 1.0, "data.val_fraction must be in [0, 1)"),
            (self.vision.stem in ("patch", "conv"), "vision.stem must be 'patch' or 'conv'"),
            (
                self.vision.stem == "patch" or (self.vision.patch_size & (self.vision.patch_size - 1)) == 0,
                "vision.stem 'conv' needs a power-of-two patch_size",
            ),
            (self.vision.stem == "patch" or not self.vision.pretrained, "vision.stem 'conv' is for random-init ViTs"),
            (self.vision.random_shift >= 0, "vision.random_shift must be >= 0"),
            (
                not self.vision.keypoints or (self.vision.stem == "conv" and self.vision.patch_size >= 8),
                "vision.keypoints needs vision.stem 'conv' with patch_size >= 8",
            ),
            (m.ode.step_size >= 0, "model.ode.step_size must be >= 0"),
        ]
        errors = [msg for ok, msg in checks if not ok]
        if errors:
            raise ValueError("invalid configuration: " + "; ".join(errors))


# Table 4 of the paper, plus the ACT-style baseline (MCC and CSA off).
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "wo_mcc": {"model.use_mcc": False},
    "wo_csa": {"model.use_csa": False},
    "wo_disc": {"loss.disc_weight": 0.0},
    "csa_no_att": {"model.csa_mode": "avgpool"},
    "tcn": {"model.proprio_encoder": "tcn"},
    "tcn_no_mcc": {"model.proprio_encoder": "tcn", "model.use_mcc": False},
    "act": {"model.use_mcc": False, "model.use_csa": False},
}


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; known: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ValueError(f"config key {where}{key} must be a mapping, got {value!r}")
            kwargs[key] = _from_dict(hint, value, f"{where}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, where + key)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Check a YAML value against the field's type; accept ints for floats and numeric strings ("3e-4")."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    base = (
        next((a for a in args if a is not type(None)), hint) if args and typing.get_origin(hint) is not list else hint
    )
    if base is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif base is bool and isinstance(value, bool):
        return value
    elif base is str and isinstance(value, str):
        return value
    elif typing.get_origin(base) is list and isinstance(value, list):
        return list(value)
    raise ValueError(f"config key {name} must be {getattr(base, '__name__', base)}, got {value!r}")


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _dotted_to_nested(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ["optim.lr=1e-4", "model.use_csa=false"] into {"optim.lr": 1e-4, ...} with YAML value typing."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
    return out


# Experiment knobs that were tried and removed, with the value that meant "off": configs and checkpoints written
# before their removal carry them and still load at that value; any other value names what to do.
RETIRED: dict[tuple[str, str], Any] = {
    ("model", "relative_joints"): 0,
    ("data", "qpos_noise"): 0.0,
    ("data", "qpos_dropout"): 0.0,
}


def _drop_retired(data: dict[str, Any]) -> dict[str, Any]:
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for (section, key), off in RETIRED.items():
        if isinstance(data.get(section), dict) and key in data[section]:
            value = data[section].pop(key)
            if value != off:
                raise ValueError(
                    f"config key {section}.{key}={value!r} was a rejected experiment and has been removed; "
                    f"only {off!r} (off) is accepted: drop the key, or use a ccol release from before its removal"
                )
    return data


def config_from_dict(data: dict[str, Any]) -> CCoLConfig:
    cfg = _from_dict(CCoLConfig, _drop_retired(data), "")
    cfg.validate()
    return cfg


def load_config(
    *sources: str | Path | dict[str, Any],
    overrides: dict[str, Any] | None = None,
    ablation: str | None = None,
) -> CCoLConfig:
    """Merge YAML files (or dicts) left to right, then an ablation, then dotted overrides."""
    merged: dict[str, Any] = CCoLConfig().to_dict()
    for source in sources:
        if isinstance(source, dict):
            data = source
        else:
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"config file {path} does not exist")
            data = yaml.safe_load(path.read_text()) or {}
        merged = _deep_merge(merged, data)
    if ablation is not None:
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; choose one of {sorted(ABLATIONS)}")
        merged = _deep_merge(merged, _dotted_to_nested(ABLATIONS[ablation]))
    if overrides:
        merged = _deep_merge(merged, _dotted_to_nested(overrides))
    return config_from_dict(merged)


def presets_dir() -> Path:
    """The `models/` folder of presets: beside the package in a checkout, or installed under share/."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "models", here.parents[1] / "models"):
        if candidate.is_dir():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("ccol_policy")) / "models"
    except Exception as exc:
        raise FileNotFoundError("cannot find the models/ preset folder; pass a YAML path instead") from exc


DEMO_PRESET = "small_cpu"  # the simulator demo's policy; `ccol replay` hands labels over in its chunks


def preset_chunk_size(name: str = DEMO_PRESET) -> int:
    """A preset's action chunk length (model.chunk_size)."""
    return load_config(resolve_preset(name)).model.chunk_size


def resolve_preset(name_or_path: str) -> Path:
    """A preset name ("small_cpu") or a YAML path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    preset = presets_dir() / f"{name_or_path}.yaml"
    if not preset.is_file():
        known = sorted(p.stem for p in presets_dir().glob("*.yaml"))
        raise FileNotFoundError(f"no preset or YAML file {name_or_path!r}; presets: {known}")
    return preset
