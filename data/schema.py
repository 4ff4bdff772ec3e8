"""Writes a curated TFDV schema for a user's dataset: the checked image size, channel count and
label domain of one span, which the pipeline then validates every later span against. When the
labels come from named class folders, the label feature's comments record which name each label
is (``class 0: cats``), so that the mapping is kept beside the schema it belongs to.

    ./gan make-schema --span_dir data/mine/span-1 --out data/schema/mine/schema.pbtxt
    ./gan make-schema --span_dir photos/span-1 --out photos_schema.pbtxt --set data.image_size=64
"""
from __future__ import annotations

import argparse
import os
import sys

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from tfx_gan.data import example_format
from tfx_gan.data import ingest
from tfx_gan.common.options import ConfigError, parse_options, parse_overrides
from tfx_gan.data.config import DataConfig, image_transform_from


def curated_schema(height: int, width: int, channels: int, num_classes: int | None,
                   class_names: dict[int, str] | None = None) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()

    def add(name, kind, domain=None):
        feature = schema.feature.add(name=name, type=kind)
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        feature.shape.dim.add(size=1)
        if domain is not None:
            feature.int_domain.min, feature.int_domain.max = domain
        return feature

    add(example_format.IMAGE_KEY, schema_pb2.BYTES)
    add(example_format.HEIGHT_KEY, schema_pb2.INT, (height, height))
    add(example_format.WIDTH_KEY, schema_pb2.INT, (width, width))
    add(example_format.CHANNELS_KEY, schema_pb2.INT, (channels, channels))
    if num_classes:
        label = add(example_format.LABEL_KEY, schema_pb2.INT, (0, num_classes - 1))
        for index, name in sorted((class_names or {}).items()):
            label.annotation.comment.append(f"class {index}: {name}")
    add(example_format.SOURCE_KEY, schema_pb2.BYTES)
    return schema


def schema_for_span(span_dir: str, transform=None) -> schema_pb2.Schema:
    """The schema of one span's images as training sees them: after ``transform``
    (data/image_transform.py) when one is given."""
    records = ingest.scan(span_dir, transform)
    height, width, channels = records[0].shape
    labels = {r.label for r in records if r.label is not None}  # ingestion checked they are >= 0
    class_names = {r.label: r.class_name for r in records if r.class_name is not None}
    return curated_schema(height, width, channels, max(labels) + 1 if labels else None, class_names)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--span_dir", required=True, help="one span folder of your data, e.g. data/mine/span-1")
    parser.add_argument("--out", required=True, help="where to write schema.pbtxt")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing schema file")
    parser.add_argument("--set", action="append", default=[], metavar="data.KEY=VALUE",
                        help="the config's image options, so the schema describes what training sees: "
                             "data.image_size=64, data.resize=pad, data.channels=3, data.background=black, "
                             "data.convert_16bit=true")


TRANSFORM_KEYS = ("image_size", "resize", "channels", "background", "convert_16bit")


def transform_from_sets(pairs: list[str]):
    """The ImageTransform that ``--set data.KEY=VALUE`` items ask for (None: none), parsed and
    checked as the pipeline config's data section is."""

    overrides = parse_overrides(pairs)
    data = overrides.pop("data", {})
    odd = sorted(set(overrides) | (set(data) - set(TRANSFORM_KEYS)))
    if odd:
        raise ConfigError(f"--set: make-schema takes only data.{{{','.join(TRANSFORM_KEYS)}}}, got {', '.join(odd)}")
    options = parse_options(DataConfig, {"input_base": "-", "schema_file": "-", **data}, "data")
    return image_transform_from(options)


def run(args: argparse.Namespace) -> int:
    if os.path.exists(args.out) and not args.overwrite:
        print(f"error: {args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2

    try:
        schema = schema_for_span(args.span_dir, transform_from_sets(args.set))
    except (ingest.IngestionError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("# Curated TFDV schema written by ./gan make-schema; edit to taste.\n")
        f.write(text_format.MessageToString(schema))
    print(f"schema: {args.out}")
    return 0
