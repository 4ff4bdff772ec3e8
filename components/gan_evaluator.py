"""GanEvaluator: a TFX component that scores the trained generator and writes its ModelBlessing.

It finds the baseline itself (the newest usable version in the push destination) instead of
using a Resolver node, because open-source Kubeflow Pipelines cannot run Resolvers, and hands
the evaluation library plain paths. The blessing follows
TFX's contract (int ``blessed``, ``current_model``, ``current_model_id``, a BLESSED or
NOT_BLESSED file: what tfx.components.Evaluator writes), so the standard Pusher pushes only blessed generators.
"""

import json
import os

import tensorflow as tf

from tfx import v1 as tfx

from components import layout, schema_utils
from components.reference_stats_gen import ReferenceStats


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
    from components.evaluation import EvaluationConfig, evaluate_and_bless

    data_schema = schema_utils.load_schema(schema.uri)
    report = evaluate_and_bless(
        reference_dir=reference.uri,
        candidate_dir=layout.serving_dir(model.uri),
        baseline=layout.find_latest_usable(push_destination) if push_destination else None,
        eval_files=layout.split_files(examples.uri, "eval"),
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
    blessing.set_float_custom_property("fid", report["candidate"]["fid"])
    if report["baseline"] is not None:
        blessing.set_string_custom_property("baseline_model", report["baseline"]["path"])
        blessing.set_int_custom_property("baseline_version", report["baseline"]["version"])
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w"):
        pass
    evaluation.set_float_custom_property("fid", report["candidate"]["fid"])
    evaluation.set_float_custom_property("fid_floor", report["candidate"]["fid_floor"])
