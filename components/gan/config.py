"""GanTrainer configuration: one dataclass, validated field by field.

The pipeline config nests these fields under ``training:``; every error names the key
(``training.<field>``) and, for choices, lists the valid ones, so a typo in a YAML file fails
before any TensorFlow work starts.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("mlp", "dcgan_28", "dcgan_rgb", "conditional_dcgan")
LOSSES = ("bce", "minimax", "lsgan", "wgan_gp", "hinge")
MIXED_PRECISION = ("auto", "off", "mixed_float16", "mixed_bfloat16")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")
DIFFAUGMENT_POLICIES = ("translation", "cutout", "color")
CONDITIONAL_ARCHITECTURES = ("conditional_dcgan",)

# Image shapes each architecture can produce (height, width, channels).
SUPPORTED_SHAPES = {
    "mlp": ((28, 28, 1),),
    "dcgan_28": ((28, 28, 1),),
    "dcgan_rgb": ((28, 28, 3), (32, 32, 3), (64, 64, 3)),
    "conditional_dcgan": tuple((s, s, c) for s in (28, 32, 64) for c in (1, 3)),
}

PREFIX = "training"


class ConfigError(ValueError):
    """A bad training configuration; the message names the key and the valid choices."""


def _fmt_shape(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


@dataclass
class TrainConfig:
    # What to train.
    architecture: str = "dcgan_28"
    loss: str = "bce"
    latent_dim: int = 100
    # Optimisation (Adam; TTUR = different g/d learning rates). Defaults tuned on the bundled
    # digits with benchmarks/train_quality.py for a < 10 minute run on 2 CPU cores: D learning 2x
    # faster than G measured best; 4000 steps of 64 take 7-8 min at ~560 images/s.
    batch_size: int = 64
    train_steps: int = 4000
    g_learning_rate: float = 2e-4
    d_learning_rate: float = 4e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    d_steps_per_g_step: int = 1
    # Stabilisation and small-data tricks. DiffAugment is off by default: over this short budget
    # the discriminator never overfits the 1,437 digits and augmentation only slowed learning
    # (FID/floor at 3,500 steps: 4.0 with translation vs 2.2 without; at 1,500 steps: 4.8 with
    # translation+cutout vs 3.1 without). Turn it on ("translation,cutout") for long runs.
    ema_decay: float = 0.999
    spectral_norm: bool = False
    r1_gamma: float = 0.0
    gp_weight: float = 10.0
    diffaugment: str = ""
    # Speed.
    mixed_precision: str = "auto"
    jit_compile: bool = False
    distribution: str = "auto"
    # Retraining: start from the generator and discriminator serving now (the newest version in
    # the pipeline's push_destination) when there is one and its weight shapes match.
    warm_start: bool = False
    # Bookkeeping.
    checkpoint_every_steps: int = 500
    log_every_steps: int = 100
    sample_every_steps: int = 0  # 0: a sample grid every epoch
    seed: int = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict | None, prefix: str = PREFIX) -> "TrainConfig":
        """Builds a validated config from a (YAML-loaded) dict; unknown keys are errors."""
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise ConfigError(f"{prefix}: expected a mapping of training options, got {type(d).__name__}")
        names = cls.field_names()
        unknown = sorted(k for k in d if k not in names)
        if unknown:
            raise ConfigError(
                f"{prefix}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(names)}")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {k: _coerce(f"{prefix}.{k}", types[k], v) for k, v in d.items()}
        config = cls(**values)
        config.validate(prefix)
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    # ------------------------------------------------------------------ validation
    @property
    def diffaugment_policies(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.diffaugment.split(",") if p.strip())

    @property
    def conditional(self) -> bool:
        return self.architecture in CONDITIONAL_ARCHITECTURES

    def validate(self, prefix: str = PREFIX) -> "TrainConfig":
        """Checks value ranges and choices; returns self."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        for name in self.field_names():
            setattr(self, name, _coerce(f"{prefix}.{name}", types[name], getattr(self, name)))

        def choice(name, choices):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"{prefix}.{name}: {value!r} is not one of: {', '.join(choices)}")

        choice("architecture", ARCHITECTURES)
        choice("loss", LOSSES)
        choice("mixed_precision", MIXED_PRECISION)
        choice("distribution", DISTRIBUTIONS)
        for policy in self.diffaugment_policies:
            if policy not in DIFFAUGMENT_POLICIES:
                raise ConfigError(
                    f"{prefix}.diffaugment: {policy!r} is not one of: {', '.join(DIFFAUGMENT_POLICIES)} "
                    "(comma-separated; '' disables)")

        def positive(name):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{prefix}.{name}: must be > 0, got {getattr(self, name)!r}")

        def non_negative(name):
            if getattr(self, name) < 0:
                raise ConfigError(f"{prefix}.{name}: must be >= 0, got {getattr(self, name)!r}")

        for name in ("latent_dim", "batch_size", "train_steps", "g_learning_rate", "d_learning_rate",
                     "d_steps_per_g_step", "checkpoint_every_steps", "log_every_steps"):
            positive(name)
        for name in ("r1_gamma", "gp_weight", "sample_every_steps", "seed"):
            non_negative(name)
        for name in ("beta_1", "beta_2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{prefix}.{name}: must be in [0, 1), got {value!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"{prefix}.ema_decay: must be in [0, 1) (0 disables the EMA generator), "
                              f"got {self.ema_decay!r}")
        if self.d_steps_per_g_step > 16:
            raise ConfigError(f"{prefix}.d_steps_per_g_step: must be between 1 and 16, got {self.d_steps_per_g_step}")
        return self

    def validate_for_data(self, image_shape: tuple, num_classes: int | None, prefix: str = PREFIX) -> "TrainConfig":
        """Checks that the architecture can model data of this shape (and labels)."""
        shape = tuple(int(d) for d in image_shape)
        supported = SUPPORTED_SHAPES[self.architecture]
        if shape not in supported:
            fitting = [a for a, shapes in SUPPORTED_SHAPES.items() if shape in shapes]
            hint = (f"; architectures that support {_fmt_shape(shape)}: {', '.join(fitting)}" if fitting
                    else f"; no architecture supports {_fmt_shape(shape)} (resize the images)")
            raise ConfigError(
                f"{prefix}.architecture: {self.architecture!r} cannot produce {_fmt_shape(shape)} images; "
                f"it supports: {', '.join(_fmt_shape(s) for s in supported)}{hint}")
        if self.conditional and (num_classes is None or int(num_classes) < 2):
            raise ConfigError(
                f"{prefix}.architecture: {self.architecture!r} needs labelled data with >= 2 classes "
                f"(got num_classes={num_classes!r}); for unlabelled data use one of: "
                f"{', '.join(a for a in ARCHITECTURES if a not in CONDITIONAL_ARCHITECTURES)}")
        return self


def _coerce(key: str, typ, value):
    """Type check for YAML values; ints are accepted for floats, numeric strings for floats
    (PyYAML reads ``2e-4`` without a dot as a string)."""
    typ = {"int": int, "float": float, "bool": bool, "str": str}.get(typ, typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if typ is str:
        if key.endswith(".mixed_precision") and isinstance(value, bool):
            return "auto" if value else "off"  # YAML 1.1 reads a bare `off` as false
        if key.endswith(".diffaugment") and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value
