"""The command every task of the compiled spec runs: TFX's v2 container entrypoint, with the input
artifacts' types filled in where open-source KFP leaves them empty.

OSS KFP's driver hands a task its upstream artifacts with an empty instance schema (the schema is
never read back from ML Metadata: backend/src/v2/metadata/client.go, GetOutputArtifactsByExecutionId,
"TODO(Bobgy): figure out how to get schema"), and TFX 1.16's entrypoint picks each artifact's class
from that schema, so every task with an input artifact fails there (tensorflow/tfx#7768). The
task's own input definitions, which a pipeline spec 2.1 passes as --json_serialized_inputs_spec_args,
name every input's type: this copies them into the artifacts that lack one, then runs TFX's
entrypoint unchanged. Vertex AI sends the types, so nothing changes there.

    python -m tfx_gan.kubeflow.container_entrypoint --executor_class_path ... --json_serialized_invocation_args ...
"""
from __future__ import annotations

import tfx_gan  # noqa: F401  Keras 3, set before TFX imports TensorFlow

from absl import app
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint


def with_input_types(executor_input_json: str, inputs_spec_json: str) -> str:
    """The ExecutorInput JSON, each input artifact without a type given the one its input declares."""
    executor_input = pipeline_spec_pb2.ExecutorInput()
    json_format.Parse(executor_input_json, executor_input, ignore_unknown_fields=True)
    inputs_spec = pipeline_spec_pb2.ComponentInputsSpec()
    json_format.Parse(inputs_spec_json, inputs_spec, ignore_unknown_fields=True)
    for name, artifact_list in executor_input.inputs.artifacts.items():
        if name not in inputs_spec.artifacts:
            continue
        for artifact in artifact_list.artifacts:
            if not (artifact.type.schema_title or artifact.type.instance_schema):
                artifact.type.CopyFrom(inputs_spec.artifacts[name].artifact_type)
    return json_format.MessageToJson(executor_input)


def parse_flags(argv: list[str]):
    args, beam_args = tfx_entrypoint._parse_flags(argv)  # TFX 1.16's own flag parser (pinned in uv.lock)
    if args.json_serialized_inputs_spec_args:
        args.json_serialized_invocation_args = with_input_types(args.json_serialized_invocation_args,
                                                                args.json_serialized_inputs_spec_args)
    return args, beam_args


if __name__ == "__main__":
    app.run(tfx_entrypoint.main, flags_parser=parse_flags)
