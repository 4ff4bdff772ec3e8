"""ImageExampleGen: TFX's FileBasedExampleGen with an executor that ingests image folders,
Keras-MNIST-style .npz files and TFRecords (see data/ingest.py for the layouts and checks).

Span selection (``span-{SPAN}/*``), fingerprints and hash splitting are TFX's own. TFX resolves the
span in ExampleGen's driver, which LocalDagRunner runs but a compiled Kubeflow spec runs only as
``lifecycle.preCacheCheck``, a hook Vertex AI runs and open-source KFP never does: there the
executor receives the pattern itself. So the executor resolves the span when nobody has, with TFX's
own input processor, and then turns that span's files into tf.train.Examples.
"""
from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor, input_processor, utils
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from data import ingest


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImagesToExample(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str):
    # The split pattern is "span-<N>/*" (the span already resolved): its folder is the span.
    span_dir = os.path.dirname(os.path.join(exec_properties["input_base"], split_pattern))
    # The scan reads and checks every image up front so that a bad file fails the run by name
    # before anything is written; the Beam stages then read and serialise in parallel.
    records = ingest.scan(span_dir)
    return (pipeline
            | "ListImages" >> beam.Create(records, reshuffle=False)
            | "ToExample" >> beam.Map(ingest.to_example))


def resolve_span(exec_properties: dict[str, Any], examples_artifact) -> dict[str, Any]:
    """What TFX's ExampleGen driver does before the executor runs: the newest span (and version), its
    fingerprint, the split patterns with the span filled in, and the span on the output artifact.
    Returns the updated exec_properties; a no-op when a driver has already resolved the span."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    if not any(utils.SPAN_SPEC in split.pattern for split in input_config.splits):
        return exec_properties
    range_config = None
    if exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY):
        range_config = range_config_pb2.RangeConfig()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.RANGE_CONFIG_KEY], range_config)
    processor = input_processor.FileBasedInputProcessor(
        exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config.splits, range_config)
    span, version = processor.resolve_span_and_version()
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    resolved = {
        **exec_properties,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        utils.SPAN_PROPERTY_NAME: span,
        utils.VERSION_PROPERTY_NAME: version,
        utils.FINGERPRINT_PROPERTY_NAME: processor.get_input_fingerprint(span, version),
    }
    example_gen_driver.update_output_artifact(resolved, examples_artifact.mlmd_artifact)
    return resolved


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        super().Do(input_dict, output_dict, resolve_span(exec_properties, examples))

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImagesToExample


def ImageExampleGen(input_base: str, eval_buckets: int = 1, train_buckets: int = 4, span_pattern: str = "span-{SPAN}/*"):
    """An ExampleGen over ``<input_base>/span-<N>/``, the newest span, split train:eval by hash."""
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="images", pattern=span_pattern)]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=train_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets)])),
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor),
    ).with_id("ImageExampleGen")
