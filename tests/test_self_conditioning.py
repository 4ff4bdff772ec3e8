"""Self-conditioning (training/self_conditioning.py): the clusters, the latent-to-cluster
draw against an independent scipy computation and its known distribution, the config rules, and
training, export, resume and warm start of a self-conditioned GAN on unlabelled digits; then the
real pipeline on a folder of unlabelled images, through evaluation to a pushed generator that
serves from a latent alone."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import stats

from tfx_gan.common import layout
from tfx_gan.training.config import ConfigError, TrainConfig
from tfx_gan.training.export import load_clusters, load_keras_model
from tfx_gan.training.self_conditioning import CLUSTERS_FILENAME, Clusters, fit_clusters
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.training.train import save_trained_models, train_gan
from tfx_gan.data.digits import digits_28x28

SHAPE = (28, 28, 1)


def three_groups(n_per_group=(20, 30, 50), seed=0):
    """Images of three well-separated brightness levels, in [-1, 1], and which group each is."""
    rs = np.random.RandomState(seed)
    groups = np.repeat(np.arange(3), n_per_group)
    images = (groups[:, None, None, None] * 0.8 - 0.8 + rs.uniform(-0.1, 0.1, size=(len(groups), 5, 5, 1)))
    return images.astype(np.float32), groups


def test_fit_recovers_separated_groups_with_their_shares():
    images, groups = three_groups()
    clusters = fit_clusters(images, 3)
    assigned = clusters.assign(images).numpy()
    assert all(len(set(assigned[groups == g])) == 1 for g in range(3))  # one cluster per group
    assert sorted(np.round(clusters.prior, 2)) == [0.2, 0.3, 0.5]
    assert clusters.centroids.shape == (3, 25) and clusters.k == 3


def test_assign_is_the_nearest_centroid():
    rs = np.random.RandomState(1)
    clusters = Clusters(centroids=rs.normal(size=(7, 12)).astype(np.float32), prior=np.full(7, 1 / 7))
    images = rs.normal(size=(200, 2, 2, 3)).astype(np.float32)
    brute_force = ((images.reshape(200, 1, 12) - clusters.centroids[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_array_equal(clusters.assign(images).numpy(), brute_force)


def test_too_few_images_for_the_clusters_is_a_config_error():
    images, _ = three_groups((1, 1, 1))
    with pytest.raises(ConfigError, match=r"^training.self_conditioning: 5 clusters need at least 5"):
        fit_clusters(images, 5)


PRIOR = np.array([0.05, 0.15, 0.3, 0.5])


def by_hand(latent, prior):
    """The latent-to-cluster draw written independently with scipy: u = Phi(z_0) picks the cluster
    by the cumulative prior, z_0 becomes Phi^-1 of u's position inside the cluster's interval."""
    u = stats.norm.cdf(latent[:, 0].astype(np.float64))
    cumulative = np.cumsum(prior)
    cluster = np.minimum(np.searchsorted(cumulative, u, side="right"), len(prior) - 1)
    z0 = stats.norm.ppf((u - (cumulative - prior)[cluster]) / prior[cluster])
    return np.concatenate([z0[:, None], latent[:, 1:]], 1), cluster


def test_split_latent_matches_an_independent_computation():
    clusters = Clusters(centroids=np.zeros((4, 3), np.float32), prior=PRIOR)
    latent = np.random.RandomState(2).normal(size=(500, 6)).astype(np.float32)
    new_latent, cluster = clusters.split_latent(latent)
    expected_latent, expected_cluster = by_hand(latent, PRIOR)
    np.testing.assert_array_equal(cluster.numpy(), expected_cluster)
    np.testing.assert_allclose(new_latent.numpy(), expected_latent, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(clusters.split_latent(latent)[0].numpy(), new_latent.numpy())  # deterministic


def test_split_latent_keeps_the_training_distribution():
    # Clusters at their training shares; the redrawn z_0 standard normal and independent of the cluster.
    clusters = Clusters(centroids=np.zeros((4, 3), np.float32), prior=PRIOR)
    latent = np.random.RandomState(3).normal(size=(200_000, 2)).astype(np.float32)
    new_latent, cluster = (t.numpy() for t in clusters.split_latent(latent))
    np.testing.assert_allclose(np.bincount(cluster, minlength=4) / len(cluster), PRIOR, atol=0.005)
    assert stats.kstest(new_latent[:, 0], "norm").pvalue > 1e-3
    for c in range(4):
        z0 = new_latent[cluster == c, 0]
        assert abs(z0.mean()) < 4 / np.sqrt(len(z0)) and abs(z0.std() - 1) < 0.02, c
    # The far tails stay finite and land in the first and last clusters.
    extreme, extreme_cluster = clusters.split_latent(np.array([[-40.0, 0.0], [40.0, 0.0]], np.float32))
    assert np.all(np.isfinite(extreme.numpy())) and list(extreme_cluster.numpy()) == [0, 3]


def test_config_rules():
    with pytest.raises(ConfigError, match=r"^training.self_conditioning: 'dcgan_28' takes no labels; .*conditional_dcgan"):
        TrainConfig.from_dict({"architecture": "dcgan_28", "self_conditioning": 10})
    # auto chooses the conditional DCGAN when self-conditioning asks for one
    auto, _ = TrainConfig.from_dict({"self_conditioning": 10}).resolve_for_data(SHAPE, None)
    assert auto.architecture == "conditional_dcgan"
    with pytest.raises(ConfigError, match=r"^training.self_conditioning: 1 cluster"):
        TrainConfig.from_dict({"architecture": "conditional_dcgan", "self_conditioning": 1})
    config = TrainConfig.from_dict({"architecture": "conditional_dcgan", "self_conditioning": 10})
    config.validate_for_data(SHAPE, None)  # unlabelled data is what it is for
    assert (config.net_classes(None), config.served_classes(None), config.served_classes(3)) == (10, None, None)
    with pytest.raises(ConfigError, match=r"or training.self_conditioning: K"):
        TrainConfig.from_dict({"architecture": "conditional_dcgan"}).validate_for_data(SHAPE, None)


def tiny(**overrides):
    base = dict(architecture="conditional_dcgan", self_conditioning=4, batch_size=16, train_steps=6,
                log_every_steps=2, checkpoint_every_steps=3, sample_every_steps=3, fid_every_steps=3,
                truncation_psi=0.7)
    return TrainConfig.from_dict({**base, **overrides})


@pytest.fixture(scope="module")
def unlabelled_files(tmp_path_factory):
    images, _ = digits_28x28()
    path = tmp_path_factory.mktemp("unlabelled") / "train.tfrecord.gz"
    return write_tfrecords(images[:200], None, str(path))


def test_train_export_resume_and_warm_start(unlabelled_files, tmp_path):
    config = tiny()
    logs = []
    result = train_gan(config, unlabelled_files, SHAPE, None, str(tmp_path / "run"), str(tmp_path / "ckpt"),
                       log=logs.append)
    assert result.clusters.k == 4 and any("self-conditioning: 4 k-means clusters" in line for line in logs)
    assert (tmp_path / "ckpt" / CLUSTERS_FILENAME).exists()
    assert result.history["metrics"]  # the training FID draws clusters from the latent, like the export

    serving = str(tmp_path / "serving")
    save_trained_models(result, config, serving, str(tmp_path / "train_config.json"), SHAPE, None)
    metadata = layout.read_metadata(serving)
    assert metadata["num_classes"] is None and metadata["self_conditioning"] == 4
    assert json.loads((tmp_path / "train_config.json").read_text())["num_classes"] is None
    np.testing.assert_array_equal(load_clusters(serving).centroids, result.clusters.centroids)

    # Served unconditionally: a latent in, images out, equal to the Keras generator fed the
    # cluster and redrawn z_0 computed by hand, times the truncation psi.
    served = tf.saved_model.load(serving)
    assert set(served.signatures["serving_default"].structured_input_signature[1]) == {"latent"}
    latent = np.random.RandomState(4).normal(size=(8, config.latent_dim)).astype(np.float32)
    images = served.signatures["serving_default"](latent=tf.constant(latent))["images"].numpy()
    new_latent, cluster = by_hand(latent, result.clusters.prior)
    generator = load_keras_model(serving, "generator")
    expected = generator([0.7 * new_latent.astype(np.float32), cluster.astype(np.int32)], training=False)
    np.testing.assert_allclose(images, expected.numpy(), atol=1e-4)
    pngs = served.signatures["generate_png"](num_images=tf.constant(3), seed=tf.constant(1))["png_bytes"]
    assert pngs.shape == (3,)

    # Resumed: the same clusters, not a new k-means.
    logs.clear()
    resumed = train_gan(config.replace(train_steps=9), unlabelled_files, SHAPE, None, str(tmp_path / "run2"),
                        str(tmp_path / "ckpt"), log=logs.append)
    assert resumed.resumed_from_step == 6 and not any("k-means" in line for line in logs)
    np.testing.assert_array_equal(resumed.clusters.centroids, result.clusters.centroids)

    # Warm start: the serving model's clusters come along (its generator learnt those) ...
    logs.clear()
    warm = train_gan(config.replace(seed=5), unlabelled_files, SHAPE, None, str(tmp_path / "run3"),
                     str(tmp_path / "ckpt3"), warm_start_dir=serving, log=logs.append)
    assert warm.warm_started_from == serving and f"self-conditioning: the 4 clusters of {serving}" in logs
    np.testing.assert_array_equal(warm.clusters.centroids, result.clusters.centroids)
    # ... and a model on other clusters (or none) is not warm-started from.
    logs.clear()
    other = train_gan(config.replace(self_conditioning=3, train_steps=2), unlabelled_files, SHAPE, None,
                      str(tmp_path / "run4"), str(tmp_path / "ckpt4"), warm_start_dir=serving, log=logs.append)
    assert other.warm_started_from is None and other.clusters.k == 3
    assert any("warm start skipped: the generator in" in line and "(its clusters: 4 of 784 pixels)" in line
               for line in logs), logs


@pytest.mark.slow
def test_pipeline_on_unlabelled_images_pushes_a_generator_served_from_a_latent(tmp_path):
    from tfx_gan.data.schema import schema_for_span
    from tfx_gan.pipeline.config import load_config
    from tfx_gan.pipeline.local_runner import run_pipeline

    images, _ = digits_28x28()
    span = tmp_path / "data" / "span-1"
    span.mkdir(parents=True)
    for i, image in enumerate(images[:300]):  # no class folders: unlabelled
        Image.fromarray(image).save(span / f"{i:04d}.png")
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(str(schema_for_span(str(span))))
    config = load_config(os.path.join("pipeline", "configs", "examples", "self_conditioned.yaml"), overrides={
        "data": {"input_base": str(tmp_path / "data"), "schema_file": str(schema)},
        "training": {"train_steps": 40, "batch_size": 32, "self_conditioning": 5},
        "evaluation": {"num_samples": 100, "classifier_epochs": 1, "num_draws": 2, "max_fid_over_floor": None,
                       "min_novelty": None},
        "push_destination": str(tmp_path / "serving"), "output_dir": str(tmp_path / "out")})
    summary = run_pipeline(config)
    assert all(c["state"] == "COMPLETE" for c in summary["components"]), summary["components"]
    with open(summary["metrics_json"]) as f:
        candidate = json.load(f)["candidate"]
    # The evaluator's discriminator accuracy: D judged each image with its nearest cluster.
    assert 0 <= candidate["d_accuracy"] <= 1 and np.isfinite(candidate["fid"])
    with open(summary["metrics_json"]) as f:
        assert json.load(f)["cas"] == {"skipped": "no CAS: the data has no labels"}

    (version, path), = layout.list_versions(config.push_destination)
    assert layout.read_metadata(path)["self_conditioning"] == 5 and load_clusters(path).k == 5
    served = tf.saved_model.load(path).signatures["serving_default"]
    images = served(latent=tf.random.normal([4, config.training.latent_dim]))["images"]
    assert images.shape == (4, 28, 28, 1)
