"""ImageExampleGen: TFX's FileBasedExampleGen with an executor that ingests image folders,
Keras-MNIST-style .npz files and TFRecords (see data/ingest.py for the layouts and checks).

The newest span (``span-{SPAN}/*``) and hash splitting are TFX's own; the split hashes the image
bytes only (SplitConfig ``partition_feature_name``), not the whole Example with its ``source``
path, so the same image lands in the same split wherever the data (or the repository) lies, and
duplicate images never straddle train and eval. Which spans a run trains on
is ``data.spans`` (``latest``, ``last:K``, ``all``: data/ingest.py ``select_spans``), passed as
the component's ``custom_config``; the ``input_fingerprint`` covers every file of those spans
(path, size, content), where TFX's covers only the entries directly under the span folder (the
class folders), so an image added to or replaced in a span is seen. The Examples artifact records
the spans as the custom property ``spans`` (a JSON list) and, for labelled data, the class names
as ``label_names`` (a JSON list, index = label: the class folders' names; read it with
``label_names_of``) and, when ``data.image_size``/``channels``/``convert_16bit`` ask for a
transform (data/image_transform.py), its parameters as ``image_transform`` (JSON; read it with
``image_transform_of``). The transform runs in the Beam job's ToExample stage, one image at a time,
so a large folder is never held in memory; the evaluator's real images are the eval split of
these Examples, so they went through the same transform.

TFX resolves the span in ExampleGen's driver, which LocalDagRunner runs but a compiled Kubeflow
spec runs only as ``lifecycle.preCacheCheck``, a hook Vertex AI runs and open-source KFP never
does: there the executor receives the pattern itself. So both our driver and our executor call
``resolve_spans``; the executor's call is a no-op when the driver has run.
"""
from __future__ import annotations

import logging
import json
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from google.protobuf import struct_pb2
from tfx.components.example_gen import base_example_gen_executor, input_processor, utils
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from tfx_gan.data import example_format
from tfx_gan.data import image_transform, ingest

logger = logging.getLogger(__name__)

LABEL_NAMES_PROPERTY = "label_names"
TRANSFORM_PROPERTY = "image_transform"
SPLIT_KEY_FEATURE = example_format.IMAGE_KEY  # what the train/eval split hashes: the encoded image bytes


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _RecordsToExample(pipeline: beam.Pipeline, records: list[ingest.ImageRecord]):
    return (pipeline
            | "ListImages" >> beam.Create(records, reshuffle=False)
            | "ToExample" >> beam.Map(ingest.to_example))


def label_names_of(examples) -> list[str] | None:
    """The class names recorded on an Examples artifact (index = label), or None (unlabelled data)."""
    recorded = examples.get_string_custom_property(LABEL_NAMES_PROPERTY)
    return json.loads(recorded) if recorded else None


def newest_span_in(split_pattern: str) -> int:
    """N of a resolved pattern ``span-<N>/*``."""
    return int(os.path.dirname(split_pattern).rsplit("span-", 1)[-1])


def spans_config(policy: str, transform: image_transform.ImageTransform | None = None) -> example_gen_pb2.CustomConfig:
    """ExampleGen's custom_config (a proto Any) carrying ``data.spans`` and, when the config asks
    for one, the image transform (``data.image_size`` and friends, as JSON)."""
    options = struct_pb2.Struct()
    options.update({"spans": policy})
    if transform is not None:
        options.update({TRANSFORM_PROPERTY: transform.to_json()})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(options)
    return config


def _custom_options(exec_properties: dict[str, Any]) -> dict[str, Any]:
    if not exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY):
        return {}
    config, options = example_gen_pb2.CustomConfig(), struct_pb2.Struct()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], config)
    return dict(options) if config.custom_config.Unpack(options) else {}


def selected_spans(exec_properties: dict[str, Any], newest: int) -> list[int]:
    """The spans ``data.spans`` (in custom_config) selects, ending at the resolved newest span."""
    policy = _custom_options(exec_properties).get("spans", "latest")
    return ingest.select_spans(exec_properties[standard_component_specs.INPUT_BASE_KEY], policy, newest)


def transform_of(exec_properties: dict[str, Any]) -> image_transform.ImageTransform | None:
    recorded = _custom_options(exec_properties).get(TRANSFORM_PROPERTY)
    return image_transform.ImageTransform.from_json(recorded) if recorded else None


def image_transform_of(examples) -> dict | None:
    """The image transform recorded on an Examples artifact (its parameters, channels decided), or None."""
    recorded = examples.get_string_custom_property(TRANSFORM_PROPERTY)
    return json.loads(recorded) if recorded else None


def resolve_spans(exec_properties: dict[str, Any], examples_artifact=None) -> dict[str, Any]:
    """What TFX's ExampleGen driver does before the executor runs: the newest span (and version),
    the split patterns with the span filled in, the span on the output artifact; then our
    fingerprint of every file of the selected spans. Returns the updated exec_properties; a no-op
    when a driver has already resolved the span."""
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
        utils.FINGERPRINT_PROPERTY_NAME: ingest.fingerprint_spans(
            exec_properties[standard_component_specs.INPUT_BASE_KEY], selected_spans(exec_properties, span)),
    }
    if examples_artifact is not None:
        example_gen_driver.update_output_artifact(resolved, examples_artifact.mlmd_artifact)
    return resolved


class Driver(example_gen_driver.FileBasedDriver):
    """TFX's driver (LocalDagRunner, Vertex's preCacheCheck) with our span selection and
    fingerprint, which TFX's cache key then includes."""

    def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
        return resolve_spans(exec_properties)


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    def Do(self, input_dict, output_dict, exec_properties: dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        resolved = resolve_spans(exec_properties, examples)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(resolved[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        spans = selected_spans(resolved, newest_span_in(input_config.splits[0].pattern))
        # Every image is read and checked up front, so that a bad file fails the run by name before
        # anything is written; the Beam stages then read and serialise in parallel.
        transform = transform_of(resolved)
        if transform is not None:
            logger.info(f"[ingest] image transform: {transform.describe()}")
        self._records = ingest.scan_spans(resolved[standard_component_specs.INPUT_BASE_KEY], spans, transform)
        examples.set_string_custom_property("spans", json.dumps(spans))
        if self._records[0].transform is not None:  # with the channel count decided from the images
            examples.set_string_custom_property(TRANSFORM_PROPERTY, self._records[0].transform.to_json())
        names = ingest.label_names(self._records)
        if names is not None:
            examples.set_string_custom_property(LABEL_NAMES_PROPERTY, json.dumps(names))
        super().Do(input_dict, output_dict, resolved)

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        # TFX calls it with (exec_properties, split pattern); the records were scanned in Do.
        return lambda exec_properties, split_pattern: _RecordsToExample(self._records)


class ImageExampleGenComponent(FileBasedExampleGen):
    """FileBasedExampleGen with our driver (span selection, fingerprint) and executor."""

    DRIVER_CLASS = Driver


def ImageExampleGen(input_base: str, eval_buckets: int = 1, train_buckets: int = 4, span_pattern: str = "span-{SPAN}/*",
                    spans: str = "latest", transform: image_transform.ImageTransform | None = None,
                    newest_span: int | None = None):
    """An ExampleGen over ``<input_base>/span-<N>/``: the spans ``spans`` selects (ending at the
    newest, or at ``newest_span`` when given: TFX's static range, so a span that arrives during
    the run is not read), each image through ``transform`` when one is given, split train:eval by
    a hash of each (transformed) image's bytes."""
    range_config = None if newest_span is None else range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=newest_span, end_span_number=newest_span))
    return ImageExampleGenComponent(
        input_base=input_base,
        range_config=range_config,
        custom_config=spans_config(spans, transform),
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="images", pattern=span_pattern)]),
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=train_buckets),
            example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets)],
            partition_feature_name=SPLIT_KEY_FEATURE)),
        custom_executor_spec=executor_spec.BeamExecutorSpec(Executor),
    ).with_id("ImageExampleGen")
