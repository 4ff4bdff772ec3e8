"""The ``evaluation:`` section of the pipeline config (ReferenceStatsGen and GanEvaluator read it):
what is measured, in which feature spaces, and what a candidate must reach to be blessed. Kept
apart from the evaluator's code so that reading a config does not import it."""
from __future__ import annotations

import dataclasses

from tfx_gan.common.options import ConfigError, option, parse_options
from tfx_gan.metrics.extractors import EXTRACTORS


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """The ``evaluation:`` section of the pipeline config, read by ReferenceStatsGen and GanEvaluator."""
    num_samples: int = option(1000, minimum=2, help="generated images per draw, capped at the floor half's size")
    num_draws: int = option(5, minimum=2, help="independent sets of N generated images: the error bars")
    seed: int = option(0, minimum=0, help="latent seed: candidate and baseline see the same latents")
    extractors: tuple[str, ...] = option(("domain_cnn", "random_cnn"), choices=EXTRACTORS.names,
                                         help="feature spaces of every metric; the first is the primary one")
    max_fid: float | None = option(None, minimum=0, exclusive=True,
                                   help="absolute bound on the primary extractor's FID; null: none")
    # 4: real images no component saw score 0.6-2.4x the fair floor over the sensitivity suite's
    # seeds; every degradation it must reject scores > 4x in at least one feature space, except a
    # faint checkerboard (amplitude 0.2) on the photographs (3.3-5.6x) and mild noise on them; the
    # default digits generator scores 1.3x (domain CNN) and 2.5-3.3x (random CNN, which is noisier
    # at N < d): a bound of 3 rejected it on some splits. README "Evaluation", "Sensitivity".
    max_fid_over_floor: float | None = option(4.0, minimum=0, exclusive=True,
                                              help="bound on FID / floor FID in every feature space; null: none")
    min_recall: float | None = option(None, minimum=0, maximum=1, help="lowest recall blessed; null: none")
    # Within-class variety (metrics/class_variety.py): each class's recall, relative to
    # the recall of real held-out images of that class (the floor), in every feature space.
    min_class_recall: float | None = option(None, minimum=0, help="lowest recall of any class relative to real "
                                            "held-out images' recall of that class, in every feature space; null: none")
    # 0.5: unseen real images score 1 by construction; copies of training images score ~0.
    min_novelty: float | None = option(0.5, minimum=0, help="lowest novelty (distance to the training set, "
                                       "relative to unseen real images) blessed; null: none")
    # 0.5: a class the generator drops (share 0) or nearly drops fails; real held-out images pass.
    min_class_share: float | None = option(0.5, minimum=0, help="lowest share of each class among the confidently "
                                           "recognised samples, relative to its share among real ones; null: none")
    regression_tolerance: float = option(0.0, minimum=0, help="how much the FID may exceed the serving model's")
    regression_z: float = option(2.0, minimum=0, help="standard errors of the FID difference counted as noise")
    # Epochs of the domain CNN (features, class confidences). 20: ~96% of held-out real digits
    # get confidence >= 0.9, so the recognisability figures are fair.
    classifier_epochs: int = option(20, minimum=1, help="epochs of the domain CNN (features and class confidences)")
    # Classification Accuracy Score (metrics/classification_accuracy.py): needs classes,
    # from the candidate's labels or, for a self-conditioned generator, its clusters' majority class.
    cas_seeds: int = option(3, minimum=0, help="seeds of the Classification Accuracy Score (a classifier trained "
                            "on generated images, tested on real held-out ones); 0 skips it")
    cas_num_images: int = option(1000, minimum=2, help="training images per CAS classifier, class-balanced "
                                 "(capped by the real training images per class)")
    cas_epochs: int = option(5, minimum=1, help="epochs of each CAS classifier")
    min_cas_ratio: float | None = option(None, minimum=0, help="lowest CAS ratio (generated-trained accuracy / "
                                         "real-trained accuracy) blessed; null: none")

    def check(self, prefix: str) -> None:
        if len(set(self.extractors)) != len(self.extractors):
            raise ConfigError(f"{prefix}.extractors: {list(self.extractors)} names an extractor twice")

    @classmethod
    def from_dict(cls, raw: dict | None) -> "EvaluationConfig":
        """Validated options from the YAML section or the components' JSON parameter."""
        return parse_options(cls, raw, "evaluation")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["extractors"] = list(self.extractors)
        return d
