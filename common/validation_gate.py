"""The data-validation gate: reads ExampleValidator's anomalies and refuses to go on.

TFX's ExampleValidator only records anomalies; nothing downstream stops. GanTrainer calls
``raise_on_anomalies`` before it touches the data, so bad data never reaches training.
"""
from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

from tfx_gan.common import layout
from tfx_gan.common.errors import UserError

ANOMALIES_FILENAME = "SchemaDiff.pb"


class DataValidationError(UserError, RuntimeError):
    """The data does not match the schema, or drifted; the one-line message names the spans and every anomaly."""


def anomaly_messages(anomalies_uri: str) -> list[str]:
    """One line per anomaly: "feature '<name>': <short description>: <details>", followed by the splits
    that have it when not every split does ("(eval only)")."""
    splits_of: dict[str, list[str]] = {}
    split_names = layout.split_names(anomalies_uri)
    for split in split_names:
        split_dir = os.path.join(anomalies_uri, layout.SPLIT_PREFIX + split)
        path = os.path.join(split_dir, ANOMALIES_FILENAME)
        if not tf.io.gfile.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        found = [(f"feature '{feature}'", info) for feature, info in sorted(anomalies.anomaly_info.items())]
        if anomalies.HasField("dataset_anomaly_info"):
            found.append(("dataset", anomalies.dataset_anomaly_info))
        for what, info in found:
            details = "; ".join(r.description for r in info.reason) or info.description
            message = " ".join(f"{what}: {info.short_description}: {details}".split())  # one line
            splits_of.setdefault(message, []).append(split)
    return [message if len(splits) == len(split_names) else f"{message} ({', '.join(splits)} only)"
            for message, splits in splits_of.items()]


def raise_on_anomalies(anomalies_uri: str, spans: list[int] | None = None) -> None:
    """Raises DataValidationError, one line naming ``spans`` (the data's spans) and every anomaly."""
    messages = anomaly_messages(anomalies_uri)
    if messages:
        which = f"span(s) {', '.join(map(str, spans))}" if spans else "the data"
        raise DataValidationError(
            f"{which} do not match the schema, training will not start: {'; '.join(messages)} (fix the data, "
            "or if it changed on purpose, write a new schema with ./gan make-schema and point data.schema_file at it)")
