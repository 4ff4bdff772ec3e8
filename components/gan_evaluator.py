"""GanEvaluator: a TFX component that scores the trained generator and writes its ModelBlessing.

It finds the baseline itself (the newest usable version in the push destination) instead of
using a Resolver node, because open-source Kubeflow Pipelines cannot run Resolvers, and hands
the evaluation library plain paths. The blessing follows
TFX's contract (int ``blessed``, ``current_model``, ``current_model_id``, a BLESSED or
NOT_BLESSED file: what tfx.components.Evaluator writes), so the standard Pusher pushes only blessed generators.

Every run leaves a record in the push directory (``<push_destination>/.runs/``: what it trained
on, parent version, metrics, decision; Pusher adds the version it pushed), and a trainer that
found nothing new (SKIPPED.json) is passed on as not blessed with its reason, unscored.

A serving generator of other images or classes (gan_metadata.json) is no baseline: the candidate
is judged on the thresholds alone, and the reason and ``no_comparable_baseline`` say why.
"""

import logging
import json
import os
import time

import tensorflow as tf

from tfx import v1 as tfx

from tfx_gan.common import layout, lineage
from tfx_gan.data import schema_utils
from tfx_gan.components.reference_stats_gen import ReferenceStats
from tfx_gan.evaluation.config import EvaluationConfig
from tfx_gan.evaluation.evaluate import evaluate_and_bless, headline_metrics

logger = logging.getLogger(__name__)


@tfx.dsl.components.component
def GanEvaluator(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    schema: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Schema],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    reference: tfx.dsl.components.InputArtifact[ReferenceStats],
    evaluation: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    evaluation_config: tfx.dsl.components.Parameter[str],
    push_destination: tfx.dsl.components.Parameter[str],
):
    skipped = layout.skipped_reason(model.uri)
    if skipped:
        report = {"skipped": True, "blessed": False, "reason": f"not trained: {skipped}", "candidate": None,
                  "baseline": None}
        logger.info(f"[evaluator] {report['reason']}")
        tf.io.gfile.makedirs(evaluation.uri)
        with tf.io.gfile.GFile(os.path.join(evaluation.uri, "metrics.json"), "w") as f:
            json.dump(report, f, indent=2)
    else:
        data_schema = schema_utils.load_schema(schema.uri)
        report = evaluate_and_bless(
            reference_dir=reference.uri,
            candidate_dir=layout.serving_dir(model.uri),
            baseline=layout.find_latest_usable(push_destination) if push_destination else None,
            eval_files=layout.split_files(examples.uri, "eval"),
            train_files=layout.split_files(examples.uri, "train"),
            image_shape=schema_utils.image_shape(data_schema),
            num_classes=schema_utils.num_classes(data_schema),
            config=EvaluationConfig.from_dict(json.loads(evaluation_config)),
            out_dir=evaluation.uri,
        )

    # TFX's blessing contract: int `blessed`, the current model's uri and id, a marker file.
    blessed = 1 if report["blessed"] else 0
    blessing.set_int_custom_property("blessed", blessed)
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_string_custom_property("reason", report["reason"])
    if report["candidate"] is not None:
        blessing.set_float_custom_property("fid", report["candidate"]["fid"])
        evaluation.set_float_custom_property("fid", report["candidate"]["fid"])
        evaluation.set_float_custom_property("fid_floor", report["candidate"]["fid_floor"])
    if report["baseline"] is not None:
        blessing.set_string_custom_property("baseline_model", report["baseline"]["path"])
        blessing.set_int_custom_property("baseline_version", report["baseline"]["version"])
    if report.get("no_comparable_baseline"):
        blessing.set_string_custom_property("no_comparable_baseline", report["no_comparable_baseline"])

    warm_started_from = model.get_string_custom_property("warm_started_from")
    parent = os.path.basename(warm_started_from.rstrip("/")) if warm_started_from else ""
    run_lineage = {key: json.loads(model.get_string_custom_property(key) or "null")
                   for key in ("spans", "data_fingerprint", "config_hash")}
    run_lineage.update(code_version=lineage.code_version(), parent_version=int(parent) if parent.isdigit() else None,
                       metrics=headline_metrics(report) if report["candidate"] else None, reason=report["reason"])
    blessing.set_string_custom_property("lineage", json.dumps(run_lineage))
    if push_destination:
        started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        record = {"time": started, "model": model.uri, **run_lineage, "blessed": bool(blessed),
                  "baseline_version": report["baseline"]["version"] if report["baseline"] else None,
                  "no_comparable_baseline": report.get("no_comparable_baseline"),
                  "pushed_version": None}
        blessing.set_string_custom_property(
            "run_record", layout.write_run_record(push_destination, f"{started}-{model.id}", record))
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w"):
        pass
