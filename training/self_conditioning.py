"""Self-conditioning: a class-conditional GAN for data without labels.

Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs": cluster the training images
and train the conditional model on the cluster ids as if they were labels. Each cluster gets its
own row of the label embedding and of the projection discriminator, so the generator must cover
every cluster: on the bundled digits an unconditional DCGAN drew the easy digits over and over
(67% recognised), the same DCGAN conditioned on 20 pixel clusters covered them (README "Training
quality"). The paper clusters discriminator features and re-clusters during training; k-means on
the pixels, once before training, measured enough here.

The clusters are part of the model: ``Clusters`` (centroids and each cluster's share of the
training images) travels in the checkpoint directory (a resumed run keeps them) and in the serving
dir's assets.extra/ (a warm start keeps them, the evaluator labels images with them).

Serving stays unconditional: a client sends only z ~ N(0, I), and ``split_latent`` derives the
cluster from z itself. u = Phi(z_0) is uniform on (0, 1); the cluster is the one whose interval of
the cumulative prior holds u, and z_0 is redrawn as Phi^-1 of u's position inside that interval,
which is again uniform and independent of the cluster. So (cluster, z) has exactly the training
distribution (clusters at their training shares, z ~ N(0, I) independent of them), and the same z
always gives the same image.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfx_gan.common.options import ConfigError

CLUSTERS_FILENAME = "clusters.npz"
FIT_MAX_IMAGES = 10_000  # k-means fits on at most this many training images (a fixed random subset)
# u's position inside its cluster's interval is kept this far from 0 and 1: Phi^-1 is finite there
# (|z_0| <= 5.3), while float64 Phi(z_0) itself saturates only beyond |z_0| ~ 8.
_EDGE = 1e-7


@dataclass(frozen=True)
class Clusters:
    centroids: np.ndarray  # float32 [K, H*W*C], in the generator's [-1, 1] pixel range
    prior: np.ndarray  # float64 [K], each cluster's share of the training images (all > 0, sum 1)

    @property
    def k(self) -> int:
        return int(len(self.centroids))

    def assign(self, images) -> tf.Tensor:
        """int32 [N]: the nearest centroid (squared Euclidean distance) of each image [N, H, W, C];
        a TensorFlow op, so it runs inside tf.data and the evaluator's Keras model alike."""
        pixels = tf.reshape(tf.cast(images, tf.float32), [tf.shape(images)[0], -1])
        centroids = tf.constant(self.centroids, tf.float32)
        # ||x - c||^2 without the ||x||^2 term, which is the same for every centroid.
        distances = tf.reduce_sum(tf.square(centroids), axis=1)[None, :] - 2.0 * tf.matmul(
            pixels, centroids, transpose_b=True)
        return tf.cast(tf.argmin(distances, axis=1), tf.int32)

    def split_latent(self, latent) -> tuple[tf.Tensor, tf.Tensor]:
        """(latent with z_0 redrawn, cluster int32 [N]) from latent [N, D] ~ N(0, I): the module
        docstring's construction; a deterministic function of ``latent``."""
        latent = tf.convert_to_tensor(latent)
        cumulative = tf.constant(np.cumsum(self.prior), tf.float64)
        prior = tf.constant(self.prior, tf.float64)
        u = 0.5 * tf.math.erfc(-tf.cast(latent[:, 0], tf.float64) / np.sqrt(2.0))  # Phi(z_0)
        cluster = tf.minimum(tf.searchsorted(cumulative, u, side="right"), self.k - 1)
        start = tf.gather(cumulative - prior, cluster)
        within = tf.clip_by_value((u - start) / tf.gather(prior, cluster), _EDGE, 1.0 - _EDGE)
        z0 = tf.cast(tf.math.ndtri(within), latent.dtype)
        return tf.concat([z0[:, None], latent[:, 1:]], axis=1), tf.cast(cluster, tf.int32)

    # -- persistence ------------------------------------------------------------------
    def save(self, directory: str) -> str:
        path = os.path.join(directory, CLUSTERS_FILENAME)
        tf.io.gfile.makedirs(directory)
        buffer = io.BytesIO()  # np.savez seeks, which a GFile opened for writing cannot
        np.savez(buffer, centroids=self.centroids, prior=self.prior)
        with tf.io.gfile.GFile(path, "wb") as f:
            f.write(buffer.getvalue())
        return path

    @classmethod
    def load(cls, directory: str) -> "Clusters | None":
        """The clusters saved in ``directory``, or None when there are none."""
        path = os.path.join(directory, CLUSTERS_FILENAME)
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path, "rb") as f:
            saved = np.load(io.BytesIO(f.read()))
        return cls(centroids=saved["centroids"].astype(np.float32), prior=saved["prior"].astype(np.float64))


def fit_clusters(images: np.ndarray, k: int, seed: int = 0) -> Clusters:
    """k-means (k-means++, 10 restarts) on the pixels of ``images`` (float [N, H, W, C] in [-1, 1]);
    at most FIT_MAX_IMAGES of them, picked with ``seed``."""
    from sklearn.cluster import KMeans

    if len(images) < k:
        raise ConfigError(f"training.self_conditioning: {k} clusters need at least {k} training images, "
                         f"got {len(images)}")
    if len(images) > FIT_MAX_IMAGES:
        images = images[np.random.default_rng(seed).choice(len(images), FIT_MAX_IMAGES, replace=False)]
    pixels = images.reshape(len(images), -1).astype(np.float32)
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(pixels)
    counts = np.bincount(kmeans.labels_, minlength=k)
    if np.any(counts == 0):  # scikit-learn relocates empty clusters; identical images can still leave one
        raise ConfigError(f"training.self_conditioning: only {np.count_nonzero(counts)} distinct clusters in "
                         f"the training images, asked for {k}; use fewer")
    return Clusters(centroids=kmeans.cluster_centers_.astype(np.float32), prior=counts / counts.sum())
