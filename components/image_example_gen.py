"""ImageExampleGen: TFX's FileBasedExampleGen with an executor that ingests image folders,
Keras-MNIST-style .npz files and TFRecords (see data/ingest.py for the layouts and checks).

Span selection (``span-{SPAN}/*``), fingerprints and hash splitting are TFX's own; this executor
only turns one span's files into tf.train.Examples.
"""
from __future__ import annotations

import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from data import ingest


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _ImagesToExample(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str):
    # The split pattern is "span-<N>/*" (the span resolved by TFX): its folder is the span.
    span_dir = os.path.dirname(os.path.join(exec_properties["input_base"], split_pattern))
    # The scan reads and checks every image up front so that a bad file fails the run by name
    # before anything is written; the Beam stages then read and serialise in parallel.
    records = ingest.scan(span_dir)
    return (pipeline
            | "ListImages" >> beam.Create(records, reshuffle=False)
            | "ToExample" >> beam.Map(ingest.to_example))


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
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
