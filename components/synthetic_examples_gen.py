"""SyntheticExamplesGen: a TFX component that writes generated training data as an Examples artifact.

It runs after Pusher and draws ``per_class`` images of every class from the generator that serves
once this run is done: the one just pushed, or (not blessed) the one that kept serving. The
Examples are in the project's format (data/example_format.py: PNG, height, width,
channels, label, source ``generated:<version>:<i>``), one ``train`` split, so a downstream TFX
Trainer reads real (ImageExampleGen's examples) and synthetic examples alike. Optional in the
pipeline: ``synthetic.per_class`` > 0 adds it.
"""
import json
import os

from tfx import v1 as tfx
from tfx.types import artifact_utils

from tfx_gan.common import layout
from tfx_gan.training.synthetic import write_generated_examples


@tfx.dsl.components.component
def SyntheticExamplesGen(
    pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
    push_destination: tfx.dsl.components.Parameter[str],
    per_class: tfx.dsl.components.Parameter[int],
    seed: tfx.dsl.components.Parameter[int] = 0,
):
    if pushed_model.get_int_custom_property("pushed"):
        source = pushed_model.get_string_custom_property("pushed_destination")
    else:  # not blessed: the version serving now
        found = layout.find_latest_usable(push_destination)
        if found is None:
            raise RuntimeError(f"SyntheticExamplesGen: nothing was pushed and nothing serves under {push_destination}")
        source = found[1]
    metadata = layout.read_metadata(source) or {}
    if not metadata.get("num_classes"):
        raise RuntimeError(f"SyntheticExamplesGen: the generator in {source} is not class-conditional; "
                           "synthetic examples need classes (set synthetic.per_class: 0)")
    split_dir = os.path.join(examples.uri, f"{layout.SPLIT_PREFIX}train")
    summary = write_generated_examples(source, metadata["num_classes"], per_class, seed,
                                       os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"))
    examples.split_names = artifact_utils.encode_split_names(["train"])
    examples.set_string_custom_property("generated_from", source)
    examples.set_string_custom_property("synthetic", json.dumps(summary))
    examples.set_int_custom_property("num_examples", summary["num_examples"])
