"""benchmarks/train_quality.py reads its data from the config, through the pipeline's ingestion, and
checks the issue's goals for the kind of run."""
import types

import numpy as np
import pytest
from PIL import Image

from benchmarks.train_quality import GOALS, check_goals, cluster_purity, generate, goals_for, load_dataset, split
from tfx_gan.training.config import TrainConfig


def _config(input_base):
    return types.SimpleNamespace(data=types.SimpleNamespace(input_base=str(input_base), spans="latest"))


def _write_span(root, images, class_names):
    for index, (image, name) in enumerate(zip(images, class_names)):
        folder = root / "span-1" / name
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")


def test_a_span_is_read_in_the_datasets_order_whatever_its_class_folders(tmp_path):
    rs = np.random.RandomState(0)
    images = rs.randint(0, 256, size=(12, 8, 8, 3), dtype=np.uint8)
    names = ["flower" if i % 3 else "china" for i in range(12)]
    _write_span(tmp_path, images, names)
    loaded, labels = load_dataset(_config(tmp_path))
    np.testing.assert_array_equal(loaded, images)  # decoded exactly, in index order
    np.testing.assert_array_equal(labels, [names[i] == "flower" for i in range(12)])  # sorted names: china=0


def test_unlabelled_grayscale_span_and_the_split(tmp_path):
    rs = np.random.RandomState(1)
    images = rs.randint(0, 256, size=(20, 6, 6), dtype=np.uint8)
    for index, image in enumerate(images):
        (tmp_path / "span-1").mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / "span-1" / f"{index:04d}.png")
    loaded, labels = load_dataset(_config(tmp_path))
    assert labels is None and loaded.shape == (20, 6, 6, 1)
    (train, train_labels), (held, held_labels) = split(loaded, labels)
    assert len(held) == 4 and len(train) == 16 and train_labels is None and held_labels is None
    assert {img.tobytes() for img in train} | {img.tobytes() for img in held} == {img.tobytes() for img in loaded}


def test_goals_follow_the_kind_of_run():
    assert goals_for(TrainConfig(architecture="conditional_dcgan"), (28, 28, 1)) == "conditional"
    assert goals_for(TrainConfig(architecture="dcgan_28"), (28, 28, 1)) == "unconditional"
    # Self-conditioned: a conditional architecture served (and scored) as an unconditional model.
    assert goals_for(TrainConfig(architecture="conditional_dcgan", self_conditioning=20), (28, 28, 1)) == "unconditional"
    assert goals_for(TrainConfig(architecture="dcgan_rgb"), (32, 32, 3)) == "colour"
    report = {"fid_ratio": 1.4, "confident_fraction": 0.95, "min_class_share": 0.08, "precision": 0.9,
              "recall": 0.79, "train_seconds": 500.0}
    met = check_goals(report, "conditional")
    assert len(met) == len(GOALS["conditional"])
    assert [goal for goal, ok in met.items() if not ok] == ["recall >= 0.8"]
    assert all(check_goals({"fid_ratio": 2.9, "train_seconds": 899.0}, "colour").values())
    with pytest.raises(KeyError):  # a goal's figure must be in the report
        check_goals({"fid_ratio": 1.0}, "unconditional")


def test_generated_images_are_drawn_at_the_truncation_psi():
    identity = lambda latent, training: latent  # noqa: E731  a "generator" that shows its input
    full = generate(identity, 10, 4, seed=3)
    np.testing.assert_allclose(generate(identity, 10, 4, seed=3, truncation_psi=0.5), 0.5 * full, rtol=1e-6)
    np.testing.assert_allclose(full, np.random.RandomState(3).normal(size=(10, 4)), rtol=1e-6)


def test_a_self_conditioned_generator_is_drawn_with_its_clusters_from_the_latent():
    from tfx_gan.training.self_conditioning import Clusters

    clusters = Clusters(centroids=np.zeros((2, 1), np.float32), prior=np.array([0.5, 0.5]))
    seen = []
    show = lambda inputs, training: seen.append(inputs[1].numpy()) or inputs[0]  # noqa: E731
    latent = generate(show, 10, 4, seed=3, clusters=clusters)
    z = np.random.RandomState(3).normal(size=(10, 4))
    np.testing.assert_array_equal(seen[0], (z[:, 0] > 0).astype(np.int32))  # prior 0.5/0.5: the sign of z_0 picks
    np.testing.assert_allclose(latent[:, 1:], z[:, 1:], rtol=1e-6)


def test_cluster_purity_counts_each_clusters_majority_label():
    assert cluster_purity(np.array([0, 0, 0, 1, 1, 1]), np.array([2, 2, 2, 5, 5, 5])) == 1.0
    assert cluster_purity(np.array([0, 0, 0, 0, 1, 1]), np.array([1, 1, 1, 2, 3, 3])) == 5 / 6


def test_a_conditional_keras_generator_is_drawn_with_the_given_labels():
    import keras

    latent_in, labels_in = keras.Input((4,)), keras.Input((), dtype="int32")
    shown = keras.layers.Concatenate()([latent_in, keras.ops.expand_dims(keras.ops.cast(labels_in, "float32"), -1)])
    model = keras.Model([latent_in, labels_in], shown)
    out = generate(model, 300, 4, seed=3, labels=np.arange(300) % 7, truncation_psi=0.5)
    np.testing.assert_allclose(out[:, :4], 0.5 * np.random.RandomState(3).normal(size=(300, 4)), rtol=1e-5)
    np.testing.assert_array_equal(out[:, 4], np.arange(300) % 7)


def test_time_to_quality_refuses_a_self_conditioned_config_in_one_line(capsys):
    from benchmarks import time_to_quality

    with pytest.raises(SystemExit) as exit_info:
        time_to_quality.main(["--config", "pipeline/configs/examples/self_conditioned.yaml"])
    assert exit_info.value.code == 2
    assert "training.self_conditioning is not supported here" in capsys.readouterr().err
