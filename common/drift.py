"""Drift between consecutive spans: TFDV's drift comparators, previous statistics without a Resolver.

A span can fit the schema (right size, channels, label range) and still differ from the data
the serving model learnt: one class only, or a different mix. TFDV compares a span's statistics
with the previous span's (``validate_statistics(..., previous_statistics=...)``) by the
Jensen-Shannon divergence of each feature's distribution; above the threshold is an anomaly.

Finding "the previous span's statistics" is what TFX's Resolver nodes do, and open-source
Kubeflow Pipelines cannot run them, so the statistics of every span that passed are kept in a
store folder of their own (``<store>/span-<N>/FeatureStats.pb``, local or gs://): the previous
span is the newest stored span older than the current one. A span that drifts is not stored,
so the next span is compared with the last good one.
"""
from __future__ import annotations

import os
import re

import tensorflow as tf

STATS_FILENAME = "FeatureStats.pb"
_SPAN_DIR = re.compile(r"^span-(\d+)/?$")


def stats_path(store: str, span: int) -> str:
    return os.path.join(store, f"span-{span}", STATS_FILENAME)


def previous_span(store: str, span: int) -> int | None:
    """The newest span older than ``span`` whose statistics are stored, or None."""
    if not tf.io.gfile.isdir(store):
        return None
    spans = [int(m.group(1)) for m in map(_SPAN_DIR.match, tf.io.gfile.listdir(store)) if m]
    older = [s for s in spans if s < span and tf.io.gfile.exists(stats_path(store, s))]
    return max(older, default=None)


def store_stats(store: str, span: int, statistics_file: str) -> str:
    path = stats_path(store, span)
    tf.io.gfile.makedirs(os.path.dirname(path))
    tf.io.gfile.copy(statistics_file, path, overwrite=True)
    return path


def drift_messages(current_stats_file: str, previous_stats_file: str, schema, thresholds: dict[str, float]) -> list[str]:
    """One line per feature whose Jensen-Shannon divergence from the previous span exceeds its
    threshold (``thresholds``: {feature: max divergence})."""
    import tensorflow_data_validation as tfdv

    drift_schema = type(schema)()
    drift_schema.CopyFrom(schema)
    for name, threshold in thresholds.items():
        tfdv.get_feature(drift_schema, name).drift_comparator.jensen_shannon_divergence.threshold = threshold
    anomalies = tfdv.validate_statistics(tfdv.load_stats_binary(current_stats_file), drift_schema,
                                         previous_statistics=tfdv.load_stats_binary(previous_stats_file))
    messages = []
    for info in anomalies.drift_skew_info:
        feature = ".".join(info.path.step)
        for measurement in info.drift_measurements:
            if measurement.value > measurement.threshold:
                messages.append(f"feature '{feature}': Jensen-Shannon divergence {measurement.value:.3f} from the "
                                f"previous span > {measurement.threshold:g}")
    return messages
