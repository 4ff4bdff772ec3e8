"""``architecture: auto``: the whole training recipe, chosen from the data and the machine.

A pipeline config that names no architecture (or ``auto``, the default) gets every training option
it does not set from ``choose_recipe``; the options it sets are kept. Each choice comes with a
one-line reason; the trainer logs them and records them in the exported model's
``gan_metadata.json`` (``recipe``), so a run says what it trained and why.

The rules, measured with benchmarks/train_quality.py and benchmarks/time_to_quality.py on the
bundled digits (28x28 grayscale, 10 classes), Twemoji icons and Wesnoth sprites (64 and 32 px
colour, 9 and 15 classes), 3 seeds each (README "Training"):

- network: the conditional DCGAN for labelled data (label embedding and class-conditional batch
  norm in G, projection D), else the DCGAN of the image's size; lean widths and resize-convolutions
  in G (no checkerboards), which train several times more images per second on a CPU;
- the stopping rule: a time budget by resolution (``max_minutes``), stopping early when the
  training FID has not improved for a while, and exporting the generator at its best training FID;
- small colour sets: differentiable augmentation (translation, cutout, colour) on every image D
  sees, and the R1 penalty on real images every step. Measured against it at the same budget
  (single seeds on the icons, README "Training"): ADA's adaptive probability, R3GAN's relativistic
  loss with R1+R2, lazy R1, class-conditional batch norm in G, StyleGAN2-style skips/residuals;
  none was better on both feature spaces, so the simplest is the default and the rest are options.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DataProfile:
    """What the recipe is chosen from."""
    image_shape: tuple[int, int, int]
    num_classes: int | None      # None or < 2: unlabelled
    num_images: int | None       # training images (None: not known)
    native_bf16: bool = False    # the CPU trains in bfloat16 (AVX512-BF16/AMX): about 2x the images/s

    @property
    def labelled(self) -> bool:
        return bool(self.num_classes) and int(self.num_classes) >= 2

    @property
    def size(self) -> int:
        return int(self.image_shape[0])

    @property
    def colour(self) -> bool:
        return int(self.image_shape[-1]) == 3


# Minutes of training per resolution on a 2-core CPU: what a user waits for a first usable model.
BUDGET_MINUTES = {28: 10.0, 32: 10.0, 64: 15.0, 128: 30.0}


def choose_recipe(profile: DataProfile, self_conditioning: int = 0) -> dict[str, tuple[Any, str]]:
    """{option: (value, reason)} for every option the recipe decides."""
    shape = "x".join(str(int(d)) for d in profile.image_shape)
    recipe: dict[str, tuple[Any, str]] = {}

    def pick(key: str, value: Any, reason: str) -> None:
        recipe[key] = (value, reason)

    conditional = profile.labelled or bool(self_conditioning)
    if conditional:
        pick("architecture", "conditional_dcgan",
             f"{profile.num_classes} classes: a class-conditional DCGAN (label into G, projection D), so samples "
             "can be asked for by class" if profile.labelled else "self-conditioning on clusters needs labels")
    else:
        pick("architecture", "dcgan", f"unlabelled {shape} images: the DCGAN of that size")
    pick("loss", "bce", "the non-saturating loss: the most stable of the measured ones at this budget")
    pick("g_width", 0.5, "half the DCGAN tutorial's widths: 3.6x fewer multiply-adds per image at the same "
         "quality (more steps in the budget)")
    pick("g_base_kernel", 3, "3x3 at G's base resolution, where the tutorial's 5x5 spent 70% of G's work")
    pick("d_kernel", 4, "4x4 stride-2 convolutions in D: no uneven overlap, a third less work than 5x5")
    pick("g_upsampling", "resize", "nearest-neighbour x2 + 3x3 convolution: no checkerboard artefacts")
    if conditional:
        pick("g_class_norm", False, "the label enters G once (embedding) and D by projection; class-conditional "
             "batch norm in G raised the training FID on the colour sets (measured)")
    budget = BUDGET_MINUTES.get(profile.size, 15.0)
    pick("max_minutes", budget, f"the time budget for {profile.size}-px images on a 2-core CPU; a slower CPU "
         "trains fewer steps in it")
    pick("train_steps", 4000 if profile.size <= 32 and not profile.colour else 100_000,
         "4,000 steps for small grayscale images (about 180 epochs of the digits)" if profile.size <= 32
         and not profile.colour else "bounded by the time budget and the stopping rule instead")
    pick("keep_best", True, "export the generator at its lowest training FID: small-data GANs often peak early")
    pick("stop_patience", 4, "stop after 4 training-FID rows (2,000 steps) without a new best")
    small = profile.num_images is None or profile.num_images <= 20_000
    if small and profile.colour:
        pick("diffaugment", "translation,cutout,color",
             f"{profile.num_images or 'an unknown number of'} colour images: D memorises them within the budget "
             "without augmentation (measured: D accuracy 0.96, FID rising after 1,000 steps)")
        pick("r1_gamma", 1.0, "R1 on real images keeps D smooth where augmentation alone lets it sharpen")
        pick("r_interval", 1, "R1 every step: applied lazily (every 4th) it let the training FID drift up "
             "(measured)")
    else:
        pick("diffaugment", "", "grayscale digits: D does not overfit them within the budget; augmentation "
             "only slowed learning (measured)")
    if not profile.colour and conditional:
        pick("mode_seeking", 0.1, "the mode-seeking term against within-class collapse (grayscale digits)")
        pick("truncation_psi", 0.9, "serve G(0.9 z): precision up at a small cost in recall (grayscale digits)")
    return recipe
