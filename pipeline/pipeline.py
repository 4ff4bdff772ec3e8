"""The TFX pipeline: wiring only. Components live in components/, settings in the config file.

ImageExampleGen (the spans data.spans selects) -> StatisticsGen -> ImportSchemaGen (curated schema)
-> ExampleValidator -> DriftValidator (vs the previous span)
-> GanTrainer (refuses to start on anomalies; stops early when nothing is new)
-> ReferenceStatsGen (real-data feature statistics, once per span) -> GanEvaluator (blessing)
-> Pusher (with an executor that publishes each version atomically)
-> SyntheticExamplesGen (only with synthetic.per_class > 0: generated Examples for a downstream Trainer)
"""
from __future__ import annotations

import json
import os

from tfx import v1 as tfx

from tfx_gan.components.atomic_pusher import AtomicPusher
from tfx_gan.components.drift_validator import DriftValidator
from tfx_gan.components.gan_evaluator import GanEvaluator
from tfx_gan.components.gan_trainer import GanTrainer
from tfx_gan.components.image_example_gen import ImageExampleGen
from tfx_gan.components.reference_stats_gen import ReferenceStatsGen
from tfx_gan.components.synthetic_examples_gen import SyntheticExamplesGen
from tfx_gan.pipeline.config import PipelineConfig

# Locally every Beam job runs in the pipeline's own process: the data is small and a worker process
# would import TFX again. Kubeflow's compile sets each task's own (kubeflow/compile.py).
LOCAL_BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def create_pipeline(config: PipelineConfig, metadata_connection_config=None,
                    beam_pipeline_args: list[str] | None = None, newest_span: int | None = None) -> tfx.dsl.Pipeline:
    """The pipeline; ``beam_pipeline_args`` None means ``data.beam_args`` or else LOCAL_BEAM_ARGS, [] none
    at the pipeline level; ``newest_span`` pins the span a run ends at (else the newest there)."""
    example_gen = ImageExampleGen(config.data.input_base, eval_buckets=config.data.eval_buckets,
                                  train_buckets=config.data.train_buckets, spans=config.data.spans,
                                  transform=config.data.image_transform(), newest_span=newest_span)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=config.data.schema_file)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    drift_validator = DriftValidator(
        examples=example_gen.outputs["examples"],
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        thresholds=json.dumps({"label": config.data.label_drift}),
        statistics_store=config.statistics_store,
    )

    trainer = GanTrainer(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        training_config=config.training_json(),
        checkpoint_root=os.path.join(config.output_dir, "checkpoints"),
        push_destination=config.push_destination,  # where a warm start finds the serving generator
    )
    trainer.add_upstream_node(drift_validator)  # a drifted span stops the run before training
    reference_stats_gen = ReferenceStatsGen(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        evaluation_config=config.evaluation_json(),
        cache_dir=config.cache_dir,
    )
    evaluator = GanEvaluator(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        model=trainer.outputs["model"],
        reference=reference_stats_gen.outputs["reference"],
        evaluation_config=config.evaluation_json(),
        push_destination=config.push_destination,
    )
    pusher = AtomicPusher(  # TFX's Pusher, publishing whole versions only
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.push_destination)),
        custom_config={"keep_versions": config.push.keep_versions},
    ).with_id("Pusher")
    components = [example_gen, statistics_gen, schema_gen, example_validator, drift_validator, trainer,
                  reference_stats_gen, evaluator, pusher]
    if config.synthetic.per_class:
        components.append(SyntheticExamplesGen(pushed_model=pusher.outputs["pushed_model"],
                                               push_destination=config.push_destination,
                                               per_class=config.synthetic.per_class, seed=config.synthetic.seed))
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=(list(config.data.beam_args or LOCAL_BEAM_ARGS) if beam_pipeline_args is None
                            else beam_pipeline_args),
    )
