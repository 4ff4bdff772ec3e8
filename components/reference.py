"""Reference statistics of the real data, computed once per data span and stored as an artifact.

The ReferenceStatsGen component builds the feature extractor that ``evaluation.extractor`` names
(components/metrics/extractors.py; the default domain classifier is trained once per data
version and cached), then computes the feature statistics of the held-out split with a Beam
combiner (count, sum, sum of outer products: mergeable, so it scales out on any Beam runner).
Each evaluation then computes only the generated side. Layout of the artifact directory:

  classifier/            the saved feature extractor
  reference_stats.npz    FeatureStats of the held-out split (Beam)
  reference_features.npy features of up to MAX_KNN_FEATURES held-out images: KID and the
                         k-NN metrics (precision/recall, density/coverage) need the points,
                         not just moments, and cost O(N^2), so a sample is what they use
  reference.json         extractor (its own name, and the registry name that loads it), counts,
                         N, seed and the real-vs-real FID floor
"""
from __future__ import annotations

import dataclasses
import functools
import io
import json
import os

import apache_beam as beam
import numpy as np
import tensorflow as tf

from components.gan.example_format import decode_image, load_arrays
from components.metrics.extractors import EXTRACTORS, load_extractor
from components.metrics.fid import FeatureStats, frechet_distance_from_stats
from components.metrics.reference_stats import ComputeReferenceStats

MAX_KNN_FEATURES = 10_000


@dataclasses.dataclass
class Reference:
    extractor: object  # see components/metrics/extractors.py for what it offers
    stats: FeatureStats
    features: np.ndarray
    info: dict


def _decode_record(record: bytes, image_shape) -> np.ndarray:
    from components.gan.example_format import IMAGE_KEY

    example = tf.train.Example.FromString(record)
    return decode_image(example.features.feature[IMAGE_KEY].bytes_list.value[0], image_shape).numpy()


def build_reference(*, train_files: list[str], eval_files: list[str], image_shape, num_classes: int | None,
                    extractor: str, num_samples: int, seed: int, classifier_epochs: int, cache_dir: str,
                    data_fingerprint: str, out_dir: str, beam_pipeline: beam.Pipeline, log=print) -> dict:
    """Builds the extractor registered as ``extractor`` and writes the artifact into ``out_dir``;
    returns what reference.json holds."""
    train_images, train_labels = load_arrays(train_files, image_shape)
    feature_extractor = EXTRACTORS.get(extractor)(
        cache_dir=cache_dir, data_fingerprint=data_fingerprint, train_images=train_images,
        train_labels=train_labels if num_classes else None, num_classes=num_classes, epochs=classifier_epochs)
    extractor_dir = os.path.join(out_dir, "classifier")  # the artifact's historical folder name
    feature_extractor.save(extractor_dir)

    stats_path = os.path.join(out_dir, "reference_stats.npz")
    with beam_pipeline as pipeline:
        _ = (pipeline
             | "ListHeldOut" >> beam.Create(eval_files)
             | "ReadHeldOut" >> beam.io.ReadAllFromTFRecord(
                 compression_type=beam.io.filesystem.CompressionTypes.GZIP)
             | "Decode" >> beam.Map(_decode_record, tuple(image_shape))
             | "FeatureStats" >> ComputeReferenceStats(functools.partial(load_extractor, extractor, extractor_dir))
             | "Write" >> beam.Map(lambda stats: stats.to_npz(stats_path)))
    reference_stats = FeatureStats.from_npz(stats_path)

    eval_images, _ = load_arrays(eval_files, image_shape)
    rng = np.random.default_rng(seed)
    knn_subset = rng.permutation(len(eval_images))[:MAX_KNN_FEATURES]
    buffer = io.BytesIO()
    np.save(buffer, feature_extractor.features(eval_images[knn_subset]))
    with tf.io.gfile.GFile(os.path.join(out_dir, "reference_features.npy"), "wb") as f:
        f.write(buffer.getvalue())

    # FID is biased in N: the floor (real train vs held-out) uses the same N as each generator.
    n = min(num_samples, len(train_images))
    subset = rng.choice(len(train_images), n, replace=False)
    train_stats = FeatureStats.from_features(feature_extractor.features(train_images[subset]))
    floor = frechet_distance_from_stats(train_stats, reference_stats)
    info = {"extractor": feature_extractor.name, "extractor_option": extractor, "num_samples": int(n),
            "num_reference": int(reference_stats.count), "num_train": int(len(train_images)), "seed": int(seed),
            "fid_floor": float(floor)}
    with tf.io.gfile.GFile(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(info, f, indent=2)
    log(f"[reference] extractor {feature_extractor.name}; {reference_stats.count} held-out images; "
        f"real-vs-real FID floor at N={n}: {floor:.4f}")
    return info


def load_reference(reference_dir: str) -> Reference:
    with tf.io.gfile.GFile(os.path.join(reference_dir, "reference.json")) as f:
        info = json.load(f)
    with tf.io.gfile.GFile(os.path.join(reference_dir, "reference_features.npy"), "rb") as features_file:
        features = np.load(io.BytesIO(features_file.read()))
    return Reference(
        extractor=load_extractor(info["extractor_option"], os.path.join(reference_dir, "classifier")),
        stats=FeatureStats.from_npz(os.path.join(reference_dir, "reference_stats.npz")),
        features=features,
        info=info,
    )
