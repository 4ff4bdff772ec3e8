"""Reference statistics of the real data, computed once per data span and stored as an artifact.

The protocol, which makes the floor fair (the same kind of images on both sides of the comparison):

- The feature extractors (``evaluation.extractors``, metrics/extractors.py) are built
  from the training split only: the domain CNN is trained on it once per data version.
- The held-out split, which neither the generator nor an extractor ever sees, is cut in two
  halves: the *reference* half R, which every generator is compared with, and the *floor* half
  F. The cut is stratified by class (within each class, images ordered by a hash of their
  bytes go alternately to R and F), so both halves have the same class mix: with few classes
  that differ a lot (two photographs), a random cut's chance imbalance alone moved the floor
  by 3x. The hash makes the cut the same on every run, machine and runner.
- Generated images are images the extractors never saw; so are F's. The floor of every metric is
  F scored against R exactly as a generator's N samples are, at the same N = min(num_samples,
  |F|): what a perfect generator would score. (Training images would not do: an extractor
  trained on them gives them tighter, more confident features, which made an older floor up to
  20x too low for a two-class dataset.)
- Novelty (metrics/novelty.py) needs the training features and F's distances to them.

Layout of the artifact directory, one folder per extractor (its ``evaluation.extractors`` name):

  <extractor>/extractor/              the saved feature extractor
  <extractor>/reference_stats.npz     FeatureStats of R (a Beam combiner: mergeable, scales out)
  <extractor>/reference_features.npy  features of up to MAX_KNN_FEATURES images of R (KID and the
                                      k-NN metrics need points, not moments, and cost O(N^2))
  <extractor>/train_features.npy      features of up to MAX_KNN_FEATURES training images (novelty)
  <extractor>/held_out_distances.npy  distances of F's images to the nearest training feature
  reference.json                      N, draws, seed, counts, and per extractor its name and the
                                      floor: every metric of F against R
"""
from __future__ import annotations

import logging
import dataclasses
import functools
import hashlib
import io
import json
import os

import numpy as np
import tensorflow as tf

from tfx_gan.data.example_format import decode_image, load_arrays, parse_example, read_examples
from tfx_gan.metrics.extractors import EXTRACTORS, load_extractor
from tfx_gan.metrics.fid import FeatureStats
from tfx_gan.metrics.novelty import distance_to_train
from tfx_gan.metrics.sample_metrics import Samples, score
from tfx_gan.metrics.reference_stats import ComputeReferenceStats

logger = logging.getLogger(__name__)

MAX_KNN_FEATURES = 10_000
MIN_FLOOR_IMAGES = 10  # fewer held-out images per half cannot give a meaningful FID


def image_key(encoded_image: bytes) -> str:
    return hashlib.sha256(encoded_image).hexdigest()


def stratified_halves(keys: list[str], labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the second half: within each label, items ordered by key alternate between
    the halves, and a label with an odd count gives its extra item to the half that is behind, so
    the halves differ by at most one item overall and per label."""
    labels = np.asarray(labels)
    second = np.zeros(len(keys), dtype=bool)
    offset = 0
    for label in np.unique(labels):
        members = sorted(np.flatnonzero(labels == label), key=lambda i: keys[i])
        second[members[1 - offset::2]] = True
        offset = (offset + len(members)) % 2
    return second


def read_held_out(eval_files: list[str], image_shape) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The held-out split in memory: (images, labels (-1: none), image keys)."""
    images, labels, keys = [], [], []
    for encoded, label in read_examples(eval_files):
        images.append(decode_image(encoded, tuple(image_shape)).numpy())
        labels.append(label)
        keys.append(image_key(encoded))
    if not images:
        raise ValueError(f"no held-out examples in {list(eval_files)}")
    return np.stack(images), np.asarray(labels, np.int32), keys


@dataclasses.dataclass
class ExtractorReference:
    """One feature space's view of the real data: what scoring a generator in it needs."""
    extractor: object  # see metrics/extractors.py for what it offers
    stats: FeatureStats  # of R
    reference_features: np.ndarray  # of (a sample of) R
    train_features: np.ndarray  # of (a sample of) the training images
    held_out_distances: np.ndarray  # of F's images to the training features
    floor: dict  # every metric of F's first N images against R
    reference_labels: np.ndarray | None = None  # the class of each reference_features row (None: no classes)

    def score(self, images: np.ndarray, num_classes: int | None, seed: int, labels: np.ndarray | None = None) -> dict:
        """Every registered metric (metrics/sample_metrics.py) of ``images`` in this
        feature space. The classifier-based ones apply when the data has classes and the
        extractor classifies them; the per-class ones when ``labels`` gives each image's class."""
        classifies = bool(num_classes) and hasattr(self.extractor, "predict_proba")
        return score(Samples(features=self.extractor.features(images),
                             probabilities=self.extractor.predict_proba(images) if classifies else None,
                             reference_stats=self.stats, reference_features=self.reference_features,
                             train_features=self.train_features, held_out_distances=self.held_out_distances,
                             seed=seed, labels=labels, reference_labels=self.reference_labels,
                             num_classes=num_classes))


@dataclasses.dataclass
class Reference:
    info: dict  # reference.json
    extractors: dict[str, ExtractorReference]  # by option name, in config order: the first is the primary


def _sample(images: np.ndarray, seed: int) -> np.ndarray:
    return images[np.random.default_rng(seed).permutation(len(images))[:MAX_KNN_FEATURES]]


def build_extractor_reference(extractor, *, train_images: np.ndarray, reference_images: np.ndarray,
                              floor_images: np.ndarray, num_samples: int, num_classes: int | None, seed: int,
                              reference_stats: FeatureStats | None = None, reference_labels: np.ndarray | None = None,
                              floor_labels: np.ndarray | None = None) -> ExtractorReference:
    """The reference of one built extractor. ``reference_stats`` (of all of R) may come from a
    Beam job; by default they are computed from ``reference_images``. With the classes of R and F
    (``reference_labels``, ``floor_labels``), the per-class metrics are scored too."""
    features = extractor.features(_sample(reference_images, seed))
    labelled = bool(num_classes) and reference_labels is not None and floor_labels is not None
    ref = ExtractorReference(
        extractor=extractor,
        stats=reference_stats if reference_stats is not None else FeatureStats.from_features(features),
        reference_features=features,
        train_features=extractor.features(_sample(train_images, seed)),
        held_out_distances=np.empty(0),
        floor={},
        reference_labels=_sample(np.asarray(reference_labels), seed) if labelled else None,
    )
    ref.held_out_distances = distance_to_train(extractor.features(_sample(floor_images, seed)), ref.train_features)
    ref.floor = ref.score(floor_images[:num_samples], num_classes, seed,
                          labels=np.asarray(floor_labels)[:num_samples] if labelled else None)
    return ref


def _save_array(path: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def _load_array(path: str) -> np.ndarray:
    with tf.io.gfile.GFile(path, "rb") as f:
        return np.load(io.BytesIO(f.read()))


def _reference_stats_with_beam(beam_pipeline, eval_files: list[str], image_shape, floor_keys: frozenset,
                               out_dir: str, names: tuple[str, ...]) -> dict:
    """FeatureStats of R (the held-out images whose key is not in ``floor_keys``) in the space of
    every extractor saved under ``out_dir``, in one Beam job; {name: FeatureStats}."""
    import apache_beam as beam

    def decode(encoded: bytes) -> np.ndarray:
        return decode_image(encoded, tuple(image_shape)).numpy()

    paths = {name: os.path.join(out_dir, name, "reference_stats.npz") for name in names}
    with beam_pipeline as pipeline:
        reference_half = (pipeline
                          | "ListHeldOut" >> beam.Create(eval_files)
                          | "ReadHeldOut" >> beam.io.ReadAllFromTFRecord(
                              compression_type=beam.io.filesystem.CompressionTypes.GZIP)
                          | "ImageBytes" >> beam.Map(lambda record: parse_example(record)[0])
                          | "ReferenceHalf" >> beam.Filter(lambda encoded: image_key(encoded) not in floor_keys)
                          | "Decode" >> beam.Map(decode))
        for name in names:
            loader = functools.partial(load_extractor, name, os.path.join(out_dir, name, "extractor"))
            _ = (reference_half
                 | f"FeatureStats[{name}]" >> ComputeReferenceStats(loader)
                 | f"Write[{name}]" >> beam.Map(lambda stats, path=paths[name]: stats.to_npz(path)))
    return {name: FeatureStats.from_npz(path) for name, path in paths.items()}


def build_reference(*, train_files: list[str], eval_files: list[str], image_shape, num_classes: int | None,
                    extractors: tuple[str, ...], num_samples: int, num_draws: int, seed: int, classifier_epochs: int,
                    cache_dir: str, data_fingerprint: str, out_dir: str, beam_pipeline, log=logger.info) -> dict:
    """Builds every extractor in ``extractors`` and writes the artifact into ``out_dir``; returns
    what reference.json holds."""
    train_images, train_labels = load_arrays(train_files, image_shape)
    held_out, held_out_labels, keys = read_held_out(eval_files, image_shape)
    floor_mask = stratified_halves(keys, held_out_labels)
    floor_images, reference_images = held_out[floor_mask], held_out[~floor_mask]
    floor_labels, reference_labels = held_out_labels[floor_mask], held_out_labels[~floor_mask]
    if min(len(floor_images), len(reference_images)) < MIN_FLOOR_IMAGES:
        raise ValueError(f"the held-out split has {len(held_out)} images, cut by class into halves of "
                         f"{len(reference_images)} and {len(floor_images)}; the evaluation needs at least "
                         f"{MIN_FLOOR_IMAGES} in each: add images or raise data.eval_buckets")
    n = min(num_samples, len(floor_images))
    if n < num_samples:
        log(f"[reference] N = {n}: the floor half of the held-out split has {len(floor_images)} images "
            f"(evaluation.num_samples {num_samples}); every generator is scored at the same N")

    built = {}
    for name in extractors:
        built[name] = EXTRACTORS.get(name, "evaluation.extractors")(
            cache_dir=cache_dir, data_fingerprint=data_fingerprint, train_images=train_images,
            train_labels=train_labels if num_classes else None, num_classes=num_classes, epochs=classifier_epochs)
        built[name].save(os.path.join(out_dir, name, "extractor"))
    floor_keys = frozenset(key for key, in_floor in zip(keys, floor_mask) if in_floor)
    reference_stats = _reference_stats_with_beam(beam_pipeline, eval_files, image_shape, floor_keys, out_dir,
                                                 tuple(built))

    info = {"num_samples": int(n), "num_draws": int(num_draws), "seed": int(seed), "num_train": len(train_images),
            "num_reference": len(reference_images), "num_floor": len(floor_images), "extractors": {}}
    for name, extractor in built.items():
        ref = build_extractor_reference(extractor, train_images=train_images, reference_images=reference_images,
                                        floor_images=floor_images, num_samples=n, num_classes=num_classes, seed=seed,
                                        reference_stats=reference_stats[name], reference_labels=reference_labels,
                                        floor_labels=floor_labels)
        directory = os.path.join(out_dir, name)
        _save_array(os.path.join(directory, "reference_features.npy"), ref.reference_features)
        if ref.reference_labels is not None:
            _save_array(os.path.join(directory, "reference_labels.npy"), ref.reference_labels)
        _save_array(os.path.join(directory, "train_features.npy"), ref.train_features)
        _save_array(os.path.join(directory, "held_out_distances.npy"), ref.held_out_distances)
        info["extractors"][name] = {"name": extractor.name, "feature_dim": int(extractor.feature_dim),
                                    "floor": ref.floor}
        log(f"[reference] {name} ({extractor.name}, {extractor.feature_dim}-d): floor (held-out F vs R, N={n}) "
            f"FID {ref.floor['fid']:.4f}, precision {ref.floor['precision']:.3f}, recall {ref.floor['recall']:.3f}")
        accuracy = held_out_accuracy(extractor, held_out, held_out_labels, num_classes)
        if accuracy is not None:
            info["extractors"][name]["held_out_accuracy"] = accuracy
            log(f"[reference] {name} classifies {accuracy:.1%} of the {len(held_out)} held-out images correctly "
                f"({num_classes} classes; chance {1 / num_classes:.1%}): the class-based figures rest on it")
    with tf.io.gfile.GFile(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(info, f, indent=2)
    log(f"[reference] done: {len(built)} feature space(s), N={n}, {num_draws} draws per generator")
    return info


def held_out_accuracy(extractor, images: np.ndarray, labels: np.ndarray, num_classes: int | None) -> float | None:
    """The share of held-out images (none of which it trained on) an extractor that classifies the
    data's classes gets right; None for one that does not classify them."""
    if not num_classes or not hasattr(extractor, "predict_proba") or getattr(extractor, "mode", "labels") != "labels":
        return None
    return float(np.mean(extractor.predict_proba(images).argmax(axis=1) == np.asarray(labels)))


def load_reference(reference_dir: str) -> Reference:
    with tf.io.gfile.GFile(os.path.join(reference_dir, "reference.json")) as f:
        info = json.load(f)
    extractors = {}
    for name, entry in info["extractors"].items():
        directory = os.path.join(reference_dir, name)
        extractors[name] = ExtractorReference(
            extractor=load_extractor(name, os.path.join(directory, "extractor")),
            stats=FeatureStats.from_npz(os.path.join(directory, "reference_stats.npz")),
            reference_features=_load_array(os.path.join(directory, "reference_features.npy")),
            train_features=_load_array(os.path.join(directory, "train_features.npy")),
            held_out_distances=_load_array(os.path.join(directory, "held_out_distances.npy")),
            floor=entry["floor"],
            reference_labels=(_load_array(os.path.join(directory, "reference_labels.npy"))
                              if tf.io.gfile.exists(os.path.join(directory, "reference_labels.npy")) else None),
        )
    return Reference(info=info, extractors=extractors)
