"""DriftValidator: a TFX component that stops the run when a span drifted from the previous one.

Thin: it finds the statistics files and calls components/drift.py. It runs after
ExampleValidator and before training (the pipeline makes GanTrainer wait for it). The statistics
of the run's data (the spans ``data.spans`` selects) are compared with those stored for the
newest earlier span, and stored under the run's newest span when they pass. A span beyond the
thresholds raises DataValidationError, one line naming the spans and each drifted feature, like
any other anomaly, and is not stored as "previous", so the next span is compared with the last
good one.
"""
import logging
import json
import os

from tfx import v1 as tfx

from tfx_gan.common import drift, layout, validation_gate
from tfx_gan.data import schema_utils
from tfx_gan.common.lineage import examples_spans
from tfx_gan.common.validation_gate import DataValidationError

logger = logging.getLogger(__name__)


@tfx.dsl.components.component
def DriftValidator(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    thresholds: tfx.dsl.components.Parameter[str],
    statistics_store: tfx.dsl.components.Parameter[str],
):
    spans = examples_spans(examples)
    # A span with schema anomalies stops here too, and is never stored as the "previous" span.
    validation_gate.raise_on_anomalies(anomalies.uri, spans)
    current = os.path.join(statistics.uri, layout.SPLIT_PREFIX + "train", drift.STATS_FILENAME)
    limits = {name: value for name, value in json.loads(thresholds).items() if value is not None}
    previous = drift.previous_span(statistics_store, max(spans))
    if previous is None:
        logger.info(f"[drift] no earlier span's statistics in {statistics_store}: nothing to compare span(s) {spans} with")
    elif limits:
        messages = drift.drift_messages(current, drift.stats_path(statistics_store, previous),
                                        schema_utils.load_schema(schema.uri), limits)
        if messages:
            raise DataValidationError(
                f"span(s) {', '.join(map(str, spans))} drifted from span {previous}, training will not start: "
                f"{'; '.join(messages)} (if the new mix is intended, raise data.label_drift, or set it to null "
                "for one run)")
        logger.info(f"[drift] span(s) {spans} vs span {previous}: within {limits}")
    drift.store_stats(statistics_store, max(spans), current)
