"""The data-validation gate: reads ExampleValidator's anomalies and refuses to go on.

TFX's ExampleValidator only records anomalies; nothing downstream stops. GanTrainer calls
``raise_on_anomalies`` before it touches the data, so bad data never reaches training.
"""
from __future__ import annotations

import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components import layout

ANOMALIES_FILENAME = "SchemaDiff.pb"


class DataValidationError(RuntimeError):
    """The data does not match the schema; the message lists every anomaly."""


def anomaly_messages(anomalies_uri: str) -> list[str]:
    """One line per anomaly: '<split>: feature '<name>': <short description>: <details>'."""
    messages = []
    for split in layout.split_names(anomalies_uri):
        split_dir = os.path.join(anomalies_uri, layout.SPLIT_PREFIX + split)
        path = os.path.join(split_dir, ANOMALIES_FILENAME)
        if not tf.io.gfile.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            details = "; ".join(r.description for r in info.reason) or info.description
            messages.append(f"{split}: feature '{feature}': {info.short_description}: {details}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            details = "; ".join(r.description for r in info.reason) or info.description
            messages.append(f"{split}: dataset: {info.short_description}: {details}")
    return messages


def raise_on_anomalies(anomalies_uri: str) -> None:
    messages = anomaly_messages(anomalies_uri)
    if messages:
        raise DataValidationError(
            f"ExampleValidator found {len(messages)} anomal{'y' if len(messages) == 1 else 'ies'}; "
            "training will not start:\n  " + "\n  ".join(messages))
