"""On the colour dataset (data/photo_patches.py), the default thresholds reject a short dcgan_rgb
run (colour blobs with checkerboard artefacts, no structure) and accept real images that no
component saw: the evaluator's own code end to end (reference artifact with its Beam job,
SavedModel sampling, every metric, the decision), without TFX around it."""
import numpy as np
import pytest
import yaml

from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.evaluate import decide_blessing, evaluate_and_bless, summarise_draws
from tfx_gan.training.config import TrainConfig
from tfx_gan.data.example_format import write_tfrecords
from tfx_gan.training.train import save_trained_models, train_gan
from tfx_gan.evaluation.reference import build_reference, load_reference
from tfx_gan.data.photo_patches import photo_patches, unseen_patches

SHAPE = (32, 32, 3)
SHORT_RUN_STEPS = 200


@pytest.fixture(scope="module")
def colour_reference(tmp_path_factory):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    root = tmp_path_factory.mktemp("colour")
    images, labels = photo_patches()
    held_out = np.random.default_rng(0).random(len(images)) < 0.2  # the pipeline's 80/20 split
    train = write_tfrecords(images[~held_out], labels[~held_out], str(root / "train.gz"))
    evaluation = write_tfrecords(images[held_out], labels[held_out], str(root / "eval.gz"))
    # The default thresholds; a 10-epoch domain CNN (default 20) keeps the test short.
    config = EvaluationConfig.from_dict({"classifier_epochs": 10})
    build_reference(train_files=train, eval_files=evaluation, image_shape=SHAPE, num_classes=2,
                    extractors=config.extractors, num_samples=config.num_samples, num_draws=config.num_draws,
                    seed=config.seed, classifier_epochs=config.classifier_epochs, cache_dir=str(root / "cache"),
                    data_fingerprint="patches", out_dir=str(root / "reference"),
                    beam_pipeline=beam.Pipeline(options=PipelineOptions(direct_num_workers=1)))
    return root, train, evaluation, config


def test_a_short_dcgan_rgb_run_is_not_blessed(colour_reference):
    root, train, evaluation, config = colour_reference
    with open("pipeline/configs/examples/dcgan_rgb.yaml") as f:
        example = yaml.safe_load(f)["training"]
    training = TrainConfig.from_dict({**example, "train_steps": SHORT_RUN_STEPS, "log_every_steps": 100,
                                      "checkpoint_every_steps": SHORT_RUN_STEPS, "sample_every_steps": 0})
    result = train_gan(training, train, SHAPE, 2, str(root / "run"), str(root / "ckpt"), log=lambda _: None)
    serving_dir = save_trained_models(result, training, str(root / "model"), str(root / "train.json"), SHAPE, 2)

    report = evaluate_and_bless(reference_dir=str(root / "reference"), candidate_dir=serving_dir, baseline=None,
                                eval_files=evaluation, image_shape=SHAPE, num_classes=2, config=config,
                                out_dir=str(root / "evaluation"), log=print)
    assert report["blessed"] is False, report["reason"]
    assert "x the floor" in report["reason"]


def test_real_images_no_component_saw_are_blessed(colour_reference):
    root, _, _, config = colour_reference
    reference = load_reference(str(root / "reference"))
    n, draws = reference.info["num_samples"], reference.info["num_draws"]
    unseen, labels = unseen_patches()
    # Class-balanced draws, as a conditional generator is asked for (china, flower, china, ...).
    rng = np.random.default_rng(1)
    china, flower = (rng.permutation(np.flatnonzero(labels == c)) for c in (0, 1))
    order = np.stack([china[:n * draws // 2 + 1], flower[:n * draws // 2 + 1]], axis=1).ravel()
    real = unseen[order[:n * draws]].astype(np.float32) / 127.5 - 1.0
    scores = {name: summarise_draws([ref.score(real[i * n:(i + 1) * n], 2, config.seed + i) for i in range(draws)])
              for name, ref in reference.extractors.items()}
    floor = {name: ref.floor for name, ref in reference.extractors.items()}
    blessed, reason = decide_blessing(scores, None, floor, config)
    assert blessed, reason
