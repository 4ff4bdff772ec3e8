"""What the GAN needs to know from the data's TFDV schema: image shape and number of classes."""
from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from tfx_gan.data import example_format


def load_schema(schema_uri: str) -> schema_pb2.Schema:
    path = schema_uri if schema_uri.endswith(".pbtxt") else os.path.join(schema_uri, "schema.pbtxt")
    from google.protobuf import text_format

    return text_format.Parse(tf.io.gfile.GFile(path).read(), schema_pb2.Schema())


def _fixed_int(schema: schema_pb2.Schema, name: str) -> int:
    for feature in schema.feature:
        if feature.name == name:
            domain = feature.int_domain
            if domain.HasField("min") and domain.min == domain.max:
                return int(domain.min)
            raise ValueError(f"schema feature '{name}' must have a single value (int_domain min == max), "
                             f"found min={domain.min if domain.HasField('min') else None}, "
                             f"max={domain.max if domain.HasField('max') else None}")
    raise ValueError(f"schema has no feature '{name}'")


def image_shape(schema: schema_pb2.Schema) -> tuple[int, int, int]:
    return (_fixed_int(schema, example_format.HEIGHT_KEY), _fixed_int(schema, example_format.WIDTH_KEY),
            _fixed_int(schema, example_format.CHANNELS_KEY))


def num_classes(schema: schema_pb2.Schema) -> int | None:
    """Number of classes from the label's int_domain (0..K-1), or None for unlabelled data."""
    for feature in schema.feature:
        if feature.name == example_format.LABEL_KEY:
            domain = feature.int_domain
            if domain.HasField("min") and domain.HasField("max") and domain.min == 0 and domain.max >= 1:
                return int(domain.max) + 1
            raise ValueError("schema feature 'label' needs int_domain {min: 0 max: K-1}")
    return None
