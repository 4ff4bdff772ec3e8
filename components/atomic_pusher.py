"""Pusher's executor, with a version that appears whole or not at all.

TFX's Pusher copies the model file by file into ``<base>/<version>/`` (saved_model.pb last), so a
kill during the copy leaves a partial version folder behind for ever, which servers and baseline
lookups then trip over. This executor keeps Pusher's contract (only blessed models are pushed;
``pushed``, ``pushed_destination`` and ``pushed_version`` on the PushedModel artifact; the model
archived under the artifact's uri) and publishes through ``tfx_gan.common.layout.publish_version``:
copy beside the versions, then rename. The pushed copy's gan_metadata.json gets the run's
lineage and the run record its version (both from the blessing, components/gan_evaluator.py);
``custom_config={"keep_versions": K}`` then removes all but the newest K versions (never the
serving one). ``AtomicPusher`` is TFX's Pusher (same inputs, outputs and
parameters) with this executor; TFX deprecates ``custom_executor_spec`` in favour of a subclass.
"""
from __future__ import annotations

import logging
import json
from typing import Any

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from tfx_gan.common import layout

logger = logging.getLogger(__name__)


class AtomicPushExecutor(pusher_executor.Executor):
    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("AtomicPushExecutor pushes to a filesystem destination only")
        base = destination.filesystem.base_directory
        if not layout.is_remote(base):
            layout.remove_stale_partials(base)  # a killed earlier push's copy, pushed or not now
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        blessing = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_BLESSING_KEY])
        lineage = blessing.get_string_custom_property("lineage")
        model_path = self.GetModelPath(input_dict)
        version, serving_path = layout.publish_version(model_path, base,
                                                       metadata={"lineage": json.loads(lineage)} if lineage else None)
        logger.info(f"[pusher] version {version} published to {serving_path}")
        run_record = blessing.get_string_custom_property("run_record")
        if run_record:
            layout.update_run_record(run_record, pushed_version=int(version))
        io_utils.copy_dir(model_path, model_push.uri)  # the archive copy TFX's Pusher keeps too
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        keep = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
        if keep.get("keep_versions") and not layout.is_remote(base):
            serving = layout.find_latest_usable(base)
            protect = (int(version),) + ((serving[0],) if serving else ())
            for path in layout.prune_versions(base, keep["keep_versions"], protect=protect):
                logger.info(f"[pusher] removed old version {path} (push.keep_versions {keep['keep_versions']})")


class AtomicPusher(Pusher):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
