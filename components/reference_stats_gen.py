"""ReferenceStatsGen: a TFX component that computes the real data's reference statistics.

Runs once per data span (TFX caching: same Examples, same parameters, same artifact); see
evaluation/reference.py for what the artifact holds and why.
"""
import json
import os

import apache_beam as beam
from tfx import v1 as tfx

from tfx_gan.common import layout, validation_gate
from tfx_gan.data import schema_utils
from tfx_gan.common.hashing import stable_hash
from tfx_gan.common.lineage import examples_spans
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.reference import build_reference


class ReferenceStats(tfx.dsl.Artifact):
    """Feature extractor + feature statistics of the held-out real images (evaluation/reference.py)."""

    # KFP v2's container entrypoint imports a custom artifact class from its schema title, which
    # TFX sets to TYPE_NAME in the form <namespace>.<Type>: tfx_gan/__init__.py re-exports it.
    TYPE_NAME = "tfx_gan.ReferenceStats"


@tfx.dsl.components.component(use_beam=True)
def ReferenceStatsGen(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    reference: tfx.dsl.components.OutputArtifact[ReferenceStats],
    evaluation_config: tfx.dsl.components.Parameter[str],
    cache_dir: tfx.dsl.components.Parameter[str],
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
):
    # Like GanTrainer, every consumer of the data refuses to run on data with anomalies.
    validation_gate.raise_on_anomalies(anomalies.uri, examples_spans(examples))

    config = EvaluationConfig.from_dict(json.loads(evaluation_config))
    data_schema = schema_utils.load_schema(schema.uri)
    fingerprint = examples.get_string_custom_property("input_fingerprint") or examples.uri
    info = build_reference(
        train_files=layout.split_files(examples.uri, "train"),
        eval_files=layout.split_files(examples.uri, "eval"),
        image_shape=schema_utils.image_shape(data_schema),
        num_classes=schema_utils.num_classes(data_schema),
        extractors=config.extractors,
        num_samples=config.num_samples,
        num_draws=config.num_draws,
        seed=config.seed,
        classifier_epochs=config.classifier_epochs,
        cache_dir=cache_dir,
        data_fingerprint=stable_hash(fingerprint, str(examples.span), str(config.classifier_epochs)),
        out_dir=reference.uri,
        beam_pipeline=beam_pipeline,
    )
    primary = next(iter(info["extractors"]))
    reference.set_string_custom_property("extractor", primary)
    reference.set_float_custom_property("fid_floor", info["extractors"][primary]["floor"]["fid"])
    reference.set_int_custom_property("num_samples", info["num_samples"])
