"""GanTrainer: a TFX component that trains a GAN on the train split and exports the generator.

Thin by design: it reads its artifacts, checks the data-validation gate, and calls the plain
library (training/train.py), which is tested without TFX.
Outputs: ``model`` (Format-Serving/ = the generator SavedModel that Pusher pushes, carrying both
nets as Keras files for warm starts and the evaluator) and ``model_run`` (TensorBoard logs,
sample grids, losses).

Warm start (``training.warm_start``): the component itself looks up the generator serving now
(the newest complete version under ``push_destination``), as GanEvaluator does for its baseline,
instead of a Resolver node, which open-source Kubeflow Pipelines cannot run.

Nothing new, nothing done: when that serving generator was trained on the same spans, files and
options (common/lineage.py), the trainer writes SKIPPED.json with the reason instead of a
model, and the evaluator and Pusher pass it on: no training, no push, the reason recorded.
A serving generator of other images or classes is never warm-started from.

The data's class names (folder names, recorded by ImageExampleGen) go into gan_metadata.json as
``class_names`` (index = label) for ``generate --label NAME`` and the server's metadata, and the
image transform that made the training images from the user's files (``image_transform``).
"""

import logging
import json
import os

from tfx import v1 as tfx

from tfx_gan.common import layout, lineage, validation_gate
from tfx_gan.data import schema_utils
from tfx_gan.common.hashing import stable_hash
from tfx_gan.training.config import TrainConfig
from tfx_gan.training.train import save_trained_models, train_gan
from tfx_gan.components.image_example_gen import image_transform_of, label_names_of
from tfx_gan.training.devices import cpu_supports_bf16
from tfx_gan.data.example_format import count_examples
from tfx_gan.training.multi_worker import train_on_workers
from tfx_gan.training.worker_pods import from_environment

logger = logging.getLogger(__name__)



def checkpoint_dir_for(checkpoint_root: str, examples_uri: str, training_json: str) -> str:
    """A directory that stays the same when the same training is run again, so that a killed run
    resumes from its last checkpoint (a new TFX execution gets a new ModelRun URI)."""
    return os.path.join(checkpoint_root, stable_hash(examples_uri, training_json))


@tfx.dsl.components.component
def GanTrainer(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Model],
    model_run: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelRun],
    training_config: tfx.dsl.components.Parameter[str],
    checkpoint_root: tfx.dsl.components.Parameter[str],
    push_destination: tfx.dsl.components.Parameter[str] = "",
):
    # The gate comes first: bad data never reaches training.
    validation_gate.raise_on_anomalies(anomalies.uri, lineage.examples_spans(examples))

    config = TrainConfig.from_json(training_config)
    data_schema = schema_utils.load_schema(schema.uri)
    image_shape = schema_utils.image_shape(data_schema)
    num_classes = schema_utils.num_classes(data_schema)
    train_files = layout.split_files(examples.uri, "train")
    config, recipe = config.resolve_for_data(image_shape, num_classes, count_examples(train_files),
                                             cpu_supports_bf16())

    identity = lineage.training_identity(lineage.examples_spans(examples),
                                         examples.get_string_custom_property("input_fingerprint") or examples.uri,
                                         training_config)
    for key, value in identity.items():
        model.set_string_custom_property(key, json.dumps(value))
    serving = layout.find_latest_usable(push_destination) if push_destination else None
    if serving and lineage.nothing_new(identity, layout.read_metadata(serving[1])):
        reason = f"no new data since version {serving[0]} ({lineage.describe(identity)})"
        logger.info(f"[trainer] {reason}: not training")
        layout.write_skipped(model.uri, reason)
        model.set_string_custom_property("skipped", reason)
        return

    class_names = label_names_of(examples)
    model_classes = config.served_classes(num_classes)
    warm_start_dir = None
    if config.warm_start and push_destination:
        warm_start_dir = serving[1] if serving else None  # warm_start() refuses other images or classes
        if serving is None:
            logger.info(f"warm start: no generator is serving under {push_destination} yet; training from scratch")
    checkpoint_dir = checkpoint_dir_for(checkpoint_root, examples.uri, training_config)
    if config.num_workers > 1 and not os.environ.get("TF_CONFIG"):
        # several worker processes, each its own TensorFlow (training/multi_worker.py): here, or
        # worker pods when the compiled Kubeflow spec asks for them (kubeflow.trainer_workers); on a
        # cluster that sets TF_CONFIG this process is one of them and trains in place below

        result = train_on_workers(config, train_files, image_shape, num_classes, run_dir=model_run.uri,
                                  checkpoint_dir=checkpoint_dir, serving_dir=layout.serving_dir(model.uri),
                                  config_path=layout.train_config_path(model.uri), warm_start_dir=warm_start_dir,
                                  class_names=class_names, log=logger.info, pods=from_environment())
    else:
        result = train_gan(config, train_files, image_shape, num_classes, run_dir=model_run.uri,
                           checkpoint_dir=checkpoint_dir, warm_start_dir=warm_start_dir, class_names=class_names)
        save_trained_models(result, config, layout.serving_dir(model.uri), layout.train_config_path(model.uri),
                            image_shape, num_classes)
    if model_classes and class_names:  # what `generate --label NAME` and the server's metadata show
        layout.add_metadata(layout.serving_dir(model.uri), class_names=class_names)
    if recipe:  # what architecture: auto chose, and why
        layout.add_metadata(layout.serving_dir(model.uri), recipe=recipe)
    transform = image_transform_of(examples)
    if transform is not None:  # how the training images were made from the user's files
        layout.add_metadata(layout.serving_dir(model.uri), image_transform=transform)
    model.set_int_custom_property("train_steps", int(result.steps))
    model.set_string_custom_property("architecture", config.architecture)
    model.set_string_custom_property("warm_started_from", result.warm_started_from or "")
