"""GanTrainer's options: one dataclass, declared with its rules and parsed once at the edge.

The pipeline config nests these fields under ``training:``; every error names the key
(``training.<field>``) and, for choices, lists the valid ones (architectures and losses come from
their registries), so a typo in a YAML file fails before any TensorFlow work starts. Once parsed,
the training library trusts a TrainConfig; the data-dependent check (``validate_for_data``: image
shape and labels against the architecture) runs once, where the data's shape becomes known.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any

from tfx_gan.training.losses import LOSSES
from tfx_gan.training.models import ARCHITECTURES
from tfx_gan.training.recipe import DataProfile, choose_recipe
from tfx_gan.common.options import ConfigError, option, parse_options

logger = logging.getLogger(__name__)

__all__ = ["ConfigError", "TrainConfig"]

MIXED_PRECISION = ("auto", "off", "mixed_float16", "mixed_bfloat16")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")
DIFFAUGMENT_POLICIES = ("translation", "cutout", "color")
UPSAMPLING = ("transposed", "resize")

PREFIX = "training"
AUTO = "auto"


def _fmt_shape(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def _prepare(name: str, value: Any) -> Any:
    """YAML spellings of two string options."""
    if name == "mixed_precision" and isinstance(value, bool):
        return "auto" if value else "off"  # YAML 1.1 reads a bare `off` as false
    if name == "diffaugment" and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return value


@dataclass(frozen=True)
class TrainConfig:
    # What to train.
    # "auto": this and every option the config does not set are chosen from the data by
    # resolve_for_data (training/recipe.py); a pipeline config that names none means auto.
    architecture: str = option(AUTO, choices=lambda: (AUTO,) + tuple(ARCHITECTURES.names()),
                               help="the GAN's nets (table below); auto: the nets and every option not set "
                                    "here chosen from the data (training/recipe.py)")
    loss: str = option("bce", choices=LOSSES.names, help="the adversarial loss (table below)")
    latent_dim: int = option(100, minimum=0, exclusive=True, help="size of the latent vector z")
    # How the DCGAN generators upsample x2: "transposed" (the tutorial's 5x5 stride-2 transposed
    # convolutions) or "resize" (nearest-neighbour, then a 3x3 convolution: no checkerboard).
    g_upsampling: str = option("transposed", choices=UPSAMPLING,
                               help="transposed (the tutorial's 5x5 stride 2) or resize (nearest x2 + 3x3 conv)")
    # BigGAN's conditional batch norm: every batch norm of a conditional G followed by a per-class
    # scale and shift (the label then steers every layer, not only the input).
    g_class_norm: bool = option(False, help="class-conditional batch norm in a conditional G")
    # A minibatch standard-deviation channel before the DCGAN discriminator's last layer.
    d_minibatch_std: bool = option(False, help="a minibatch standard-deviation channel before D's last layer")
    # The DCGAN nets' size (models.DcganShape; the defaults are the tutorial's): G's channel widths
    # relative to the tutorial's, the kernel of G's stride-1 convolution at the base resolution
    # (most of a step's multiply-adds at 5), and the kernel of D's stride-2 convolutions.
    g_width: float = option(1.0, minimum=0, maximum=4, exclusive=True,
                            help="G's channel widths relative to the tutorial's")
    g_base_kernel: int = option(5, choices=(1, 3, 5), help="kernel of G's stride-1 convolution at the base resolution")
    d_kernel: int = option(5, choices=(3, 4, 5), help="kernel of D's stride-2 convolutions")
    g_skip: bool = option(False, help="G adds a 1x1 RGB output at every resolution (StyleGAN2's skip generator)")
    d_residual: bool = option(False, help="D's stride-2 blocks get average-pooled 1x1 shortcuts (StyleGAN2's resnet D)")
    d_dropout: float = option(0.3, minimum=0, maximum=1, exclusive_max=True,
                              help="dropout after each of the DCGAN discriminator's convolutions (the tutorial's 0.3)")
    # Optimisation (Adam; TTUR = different g/d learning rates). Defaults tuned on the bundled
    # digits with benchmarks/train_quality.py for a < 10 minute run on 2 CPU cores: D learning 2x
    # faster than G measured best; 4000 steps of 64 take 7-8 min at ~560 images/s.
    batch_size: int = option(64, minimum=0, exclusive=True, help="images per step")
    train_steps: int = option(4000, minimum=0, exclusive=True, help="generator steps")
    # A wall-clock budget for the training loop (from its first step, per start of train_gan): when
    # it runs out, training stops after that step and exports what it has, so a slow CPU trains
    # fewer steps instead of taking longer. null: train all train_steps.
    max_minutes: float | None = option(None, minimum=0, exclusive=True,
                                       help="minutes of training at most; null disables")
    g_learning_rate: float = option(2e-4, minimum=0, exclusive=True, help="Adam learning rate of G")
    d_learning_rate: float = option(4e-4, minimum=0, exclusive=True,
                                    help="Adam learning rate of D (TTUR when it differs from G's)")
    beta_1: float = option(0.5, minimum=0, maximum=1, exclusive_max=True, help="Adam beta_1")
    beta_2: float = option(0.999, minimum=0, maximum=1, exclusive_max=True, help="Adam beta_2")
    d_steps_per_g_step: int = option(1, minimum=1, maximum=16, help="D updates per G update")
    # Late learning-rate decay: from this fraction of train_steps both learning rates fall linearly
    # to 0 at the last step (smaller steps at the end: fewer off-manifold samples). 1 disables.
    lr_decay_from: float = option(1.0, minimum=0, maximum=1,
                                  help="share of train_steps after which the rates fall linearly to 0; 1 disables")
    # Stabilisation and small-data tricks. DiffAugment is off by default: over this short budget
    # the discriminator never overfits the 1,437 digits and augmentation only slowed learning
    # (FID/floor at 3,500 steps: 4.0 with translation vs 2.2 without; at 1,500 steps: 4.8 with
    # translation+cutout vs 3.1 without). Turn it on ("translation,cutout") for long runs.
    ema_decay: float = option(0.999, minimum=0, maximum=1, exclusive_max=True,
                              help="decay of the EMA generator that is exported; 0 disables")
    spectral_norm: bool = option(False, help="spectral normalisation of D's layers")
    r1_gamma: float = option(0.0, minimum=0, help="weight of the R1 gradient penalty on real images; 0 disables")
    gp_weight: float = option(10.0, minimum=0, help="weight of WGAN-GP's gradient penalty (loss wgan_gp only)")
    r2_gamma: float = option(0.0, minimum=0, help="weight of the R2 gradient penalty on generated images; 0 disables")
    # Lazy regularisation (StyleGAN2): the R1/R2 penalties every this many steps, weighted by it.
    r_interval: int = option(1, minimum=1, maximum=64, help="steps between R1/R2 penalties (lazy regularisation)")
    diffaugment: str = option("", help="comma-separated: translation, cutout, color; '' disables")
    # ADA (Karras et al. 2020): each diffaugment policy is applied to each image with probability p,
    # which starts at 0 and moves by batch / ada_images per step towards keeping the overfitting
    # signal r = E[sign D(real)] at ada_target. null: p = 1 (plain DiffAugment).
    ada_target: float | None = option(None, minimum=0, maximum=1, exclusive=True,
                                      help="ADA's target for E[sign D(real)]; null: augment every image (DiffAugment)")
    ada_images: int = option(100_000, minimum=1, help="images over which ADA's p can move from 0 to 1")
    # Weight of the mode-seeking term in G's loss (losses.mode_seeking_penalty): against the same
    # few images per class from different latents.
    mode_seeking: float = option(0.0, minimum=0, help="weight of the mode-seeking term in G's loss; 0 disables")
    # The truncation trick in z (StyleGAN's psi; z's mean is 0): the exported generator, the sample
    # grids and the training FID draw G(psi * z), z ~ N(0, I). Below 1 it trades variety (recall)
    # for fidelity (precision): for a model whose recall is to spare.
    truncation_psi: float = option(1.0, minimum=0, maximum=1, exclusive=True,
                                   help="latent scale of the exported generator; 1 disables")
    # Self-conditioning (training/self_conditioning.py): a conditional architecture trained on
    # this many k-means clusters of the training images instead of labels, served unconditionally
    # (the cluster is drawn from the latent). For unlabelled data; the data's labels, if any, are unused.
    self_conditioning: int = option(0, minimum=0, help="number of clusters; 0 disables")
    # Speed.
    mixed_precision: str = option("auto", choices=MIXED_PRECISION,
                                  help="auto: mixed_float16 on GPU, mixed_bfloat16 with AVX512-BF16/AMX, else float32")
    jit_compile: bool = option(False, help="XLA for the train step (slower on CPU)")
    distribution: str = option("auto", choices=DISTRIBUTIONS,
                               help="auto: multi_worker when TF_CONFIG names workers, mirrored with >1 GPU, else none")
    num_workers: int = option(1, minimum=1, maximum=64, help="training processes (MultiWorkerMirroredStrategy): >1 "
                              "starts that many local workers on loopback ports unless TF_CONFIG already names a "
                              "cluster (training/multi_worker.py)")
    # Retraining: start from the generator and discriminator serving now (the newest version in
    # the pipeline's push_destination) when there is one and its weight shapes match.
    warm_start: bool = option(False, help="start from the serving generator and discriminator when their shapes match")
    # Bookkeeping.
    checkpoint_every_steps: int = option(500, minimum=0, exclusive=True,
                                         help="steps between checkpoints (a killed run resumes from the last)")
    log_every_steps: int = option(100, minimum=0, exclusive=True, help="steps between progress lines")
    sample_every_steps: int = option(0, minimum=0, help="0: about 10 grids spaced across training")
    # The training FID (random_cnn features of 1,024 EMA samples vs the training images): ~1-2% of
    # a default run's time at 500.
    fid_every_steps: int = option(500, minimum=0, help="0 disables the FID during training")
    # Quality-based stopping, on the training FID rows above (training/hooks.py BestGenerator).
    keep_best: bool = option(False, help="export the generator at its lowest training FID instead of the last step's")
    stop_patience: int | None = option(None, minimum=1, help="stop after this many training-FID rows without a new "
                                       "best (single-process training); null: train to train_steps/max_minutes")
    seed: int = option(0, minimum=0, help="seed of the weights, latents and data order")

    # ------------------------------------------------------------------ construction
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict | None, prefix: str = PREFIX) -> "TrainConfig":
        """A validated config from a (YAML-loaded) dict; unknown keys are errors. The keys it gives
        are remembered (``given``): with ``architecture: auto`` the recipe decides the others."""
        config = parse_options(cls, d, prefix, prepare=_prepare)
        object.__setattr__(config, "_given", frozenset(d or ()))
        return config

    @classmethod
    def from_json(cls, text: str, prefix: str = PREFIX) -> "TrainConfig":
        """The inverse of ``to_json``: how a component parameter or a worker's spec becomes a config."""
        return cls.from_dict(json.loads(text), prefix)

    def to_json(self, given_only: bool = False) -> str:
        """The config as JSON; ``given_only``: only the options that were set (what the pipeline passes
        to GanTrainer, whose recipe decides the rest for the data)."""
        return json.dumps(self.given_dict() if given_only else self.to_dict(), sort_keys=True)

    @property
    def given(self) -> frozenset[str]:
        """The options a config file or caller set (every one, for a TrainConfig built directly)."""
        return getattr(self, "_given", None) or frozenset(self.field_names())

    def given_dict(self) -> dict[str, Any]:
        """Only the options that were set: what a component must receive for the recipe to decide
        the rest the same way."""
        return {name: value for name, value in self.to_dict().items() if name in self.given}

    def check(self, prefix: str = PREFIX) -> None:
        """Cross-field rules, run by parse_options after the per-field ones."""
        for policy in self.diffaugment_policies:
            if policy not in DIFFAUGMENT_POLICIES:
                raise ConfigError(
                    f"{prefix}.diffaugment: {policy!r} is not one of: {', '.join(DIFFAUGMENT_POLICIES)} "
                    "(comma-separated; '' disables)")
        if (self.keep_best or self.stop_patience is not None) and not self.fid_every_steps:
            raise ConfigError(f"{prefix}.fid_every_steps: 0 turns off the training FID that keep_best and stop_patience "
                              "read; set fid_every_steps > 0 or turn them off")
        if self.self_conditioning == 1:
            raise ConfigError(f"{prefix}.self_conditioning: 1 cluster is no conditioning; use >= 2 (or 0 to disable)")
        if self.self_conditioning and self.architecture != AUTO and not self.conditional:
            conditional = [e.name for e in ARCHITECTURES.entries() if e.info["conditional"]]
            raise ConfigError(
                f"{prefix}.self_conditioning: {self.architecture!r} takes no labels; self-conditioning needs a "
                f"conditional architecture: {', '.join(conditional)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "TrainConfig":
        """A validated copy with some fields changed (they count as set; the rest keep their status)."""
        copy = TrainConfig.from_dict({**self.to_dict(), **changes})
        object.__setattr__(copy, "_given", self.given | frozenset(changes))
        return copy

    # ------------------------------------------------------------------ derived
    @property
    def diffaugment_policies(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.diffaugment.split(",") if p.strip())

    @property
    def conditional(self) -> bool:
        if self.architecture == AUTO:
            raise ConfigError(f"{PREFIX}.architecture: 'auto' is chosen from the data first (validate_for_data)")
        return ARCHITECTURES.entry(self.architecture).info["conditional"]

    @property
    def serves_labels(self) -> bool:
        """Whether the exported generator takes labels from clients (a self-conditioned one draws
        its clusters from the latent instead)."""
        return self.conditional and not self.self_conditioning

    def net_classes(self, data_classes: int | None) -> int | None:
        """How many labels the nets are built for: the clusters when self-conditioning, the data's
        classes for a conditional architecture, None for an unconditional one."""
        if self.self_conditioning:
            return self.self_conditioning
        return int(data_classes) if self.conditional and data_classes else None

    def served_classes(self, data_classes: int | None) -> int | None:
        """How many labels the exported generator takes from clients: the data's classes for a
        conditional architecture, None when unconditional or self-conditioned (clusters come from z)."""
        return self.net_classes(data_classes) if self.serves_labels else None

    def resolve_for_data(self, image_shape: tuple, num_classes: int | None, num_images: int | None = None,
                         native_bf16: bool = False, prefix: str = PREFIX,
                         log=logger.info) -> tuple["TrainConfig", dict[str, dict[str, Any]]]:
        """The config to train on this data, and the recipe that made it. With ``architecture:
        auto`` every option not set is chosen by training/recipe.py (each logged with its
        reason); the result is checked against the data (``validate_for_data``). The recipe is
        {option: {"value", "reason"}} (set options: reason "set in the config"); {} otherwise."""
        if self.architecture != AUTO:
            return self.validate_for_data(image_shape, num_classes, prefix), {}
        shape = tuple(int(d) for d in image_shape)
        profile = DataProfile(shape, num_classes, num_images, native_bf16)
        chosen = choose_recipe(profile, self.self_conditioning)
        given = self.given - {"architecture"}
        changes = {key: value for key, (value, _) in chosen.items() if key not in given}
        recipe = {key: {"value": getattr(self, key) if key in given else value,
                        "reason": "set in the config" if key in given else reason}
                  for key, (value, reason) in chosen.items()}
        images = f"{num_images:,} " if num_images else ""
        classes = f"{num_classes} classes" if num_classes else "unlabelled"
        log(f"{prefix}.architecture auto: the recipe for {images}{_fmt_shape(shape)} images, {classes}:")
        for key, entry in recipe.items():
            log(f"  {prefix}.{key} = {entry['value']!r}: {entry['reason']}")
        config = TrainConfig.from_dict({**self.to_dict(), **changes})
        object.__setattr__(config, "_given", self.given | frozenset(changes))
        return config.validate_for_data(shape, num_classes, prefix), recipe

    def validate_for_data(self, image_shape: tuple, num_classes: int | None, prefix: str = PREFIX) -> "TrainConfig":
        """Checks that the architecture can model data of this shape (and labels); returns the
        config to train (``auto``: the recipe's, see ``resolve_for_data``)."""
        shape = tuple(int(d) for d in image_shape)
        if self.architecture == AUTO:
            return self.resolve_for_data(shape, num_classes, prefix=prefix)[0]
        supported = ARCHITECTURES.entry(self.architecture).info["shapes"]
        if shape not in supported:
            fitting = [e.name for e in ARCHITECTURES.entries() if shape in e.info["shapes"]]
            hint = (f"; architectures that support {_fmt_shape(shape)}: {', '.join(fitting)}" if fitting
                    else f"; no architecture supports {_fmt_shape(shape)} (resize the images)")
            raise ConfigError(
                f"{prefix}.architecture: {self.architecture!r} cannot produce {_fmt_shape(shape)} images; "
                f"it supports: {', '.join(_fmt_shape(s) for s in supported)}{hint}")
        if self.conditional and not self.self_conditioning and (num_classes is None or int(num_classes) < 2):
            unconditional = [e.name for e in ARCHITECTURES.entries() if not e.info["conditional"]]
            raise ConfigError(
                f"{prefix}.architecture: {self.architecture!r} needs labelled data with >= 2 classes "
                f"(got num_classes={num_classes!r}); for unlabelled data use one of: {', '.join(unconditional)} "
                f"(or {prefix}.self_conditioning: K, to condition on K clusters of the images)")
        return self
