"""Feature extractors by name: the space FID, KID and the k-NN metrics compare images in.

``evaluation.extractors`` names them. ReferenceStatsGen builds each once per data version and saves
it into the reference artifact; the evaluator loads that saved copy, so both sides of every FID
see the same features (as clean-fid's ``build_feature_extractor`` picks one by name).

A builder takes keyword arguments ``cache_dir, data_fingerprint, train_images, train_labels,
num_classes, epochs`` (the ones it needs) and returns an object with ``name``,
``features(images, batch_size)`` and ``save(directory)``; an extractor that classifies the
data's own classes also has ``predict_proba(images)`` (the classifier-based metrics need it).
Each entry's ``load`` reads a saved copy back.
"""
from __future__ import annotations

import os

from tfx_gan.metrics.domain_classifier import DomainClassifier, load_or_train_domain_classifier
from tfx_gan.metrics.inception import InceptionFeatureExtractor
from tfx_gan.metrics.pixels import PixelFeatures
from tfx_gan.metrics.random_cnn import RandomCNN
from tfx_gan.common.registry import Registry

EXTRACTORS = Registry("extractor")


@EXTRACTORS.register(
    "domain_cnn", "a small CNN trained on the real training split to predict the class (when labelled) and "
    "which quarter turn was applied; its 128-d penultimate layer is the feature space; cached per data fingerprint",
    load=DomainClassifier.load)
def build_domain_cnn(*, cache_dir: str, data_fingerprint: str, train_images, train_labels, num_classes,
                     epochs: int) -> DomainClassifier:
    # v3: trained with random shifts (benchmarks/domain_classifier.py: held-out accuracy 0.658 -> 0.687
    # on the Twemoji icons at 64 px, 0.983 -> 0.997 on the digits); earlier caches are not reused.
    return load_or_train_domain_classifier(os.path.join(cache_dir, "domain_cnn_v3"), data_fingerprint,
                                           train_images, train_labels, num_classes, epochs=epochs, seed=0,
                                           augment=True)


@EXTRACTORS.register(
    "random_cnn", "a randomly initialised 4-block CNN (fixed seed, never trained): mean and std of each block's "
    "activations, 704-d; sees blur, noise and pixel artefacts", load=RandomCNN.load)
def build_random_cnn(*, train_images, **_) -> RandomCNN:
    return RandomCNN(train_images.shape[1:], seed=0)


@EXTRACTORS.register(
    "pixels_8x8", "the images area-averaged to 8x8 per channel: sees a generator that draws a few prototypes per "
    "class, which a trained classifier's features map together", load=PixelFeatures.load)
def build_pixels(*, train_images, **_) -> PixelFeatures:
    return PixelFeatures(train_images.shape[1:])


@EXTRACTORS.register(
    "inception", "InceptionV3 pool3 (2048-d, 299x299) from a local Keras weights file; not comparable with "
    "published FIDs (Keras's weights are not the 2015 TF graph)",
    load=InceptionFeatureExtractor.load)
def build_inception(**_) -> InceptionFeatureExtractor:
    return InceptionFeatureExtractor()


def load_extractor(name: str, directory: str):
    """The extractor registered as ``name``, read back from where its ``save`` wrote it."""
    return EXTRACTORS.entry(name).info["load"](directory)
