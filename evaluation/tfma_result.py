"""The evaluator's figures as a TensorFlow Model Analysis EvalResult, overall and per class, so that
``tfma.load_eval_result(<ModelEvaluation uri>)`` and TFMA's views read them like any TFX
Evaluator output.

One TFMA "model" with two outputs, computed by TFMA's own metrics from one table of examples
(no model is run: the predictions are already made):
  discriminator  every held-out real image (is_real 1) and generated image (is_real 0), its
                 discriminator probability: ExampleCount, BinaryAccuracy, AUC. Real and generated
                 rows are weighted to equal totals, so the overall BinaryAccuracy is the balanced
                 d_accuracy of metrics.json.
  cas            every held-out real image, 1 where the classifier trained on generated images
                 predicts its class and 0 where it does not (label 1): BinaryAccuracy is that
                 classifier's accuracy (the CAS numerator); generated rows weigh 0 here. (TFMA's
                 ExactMatch on the predicted class would say the same, but divides by zero on a
                 class with no held-out image, which a small split has.)
Sliced by ``label``: a real image's class, a generated image's requested class. A class whose
samples the discriminator tells apart easily (high accuracy, AUC near 1), or whose real images the
CAS classifier misses, is a class the generator does badly.

TFMA's ``analyze_raw_data`` would do the same for one output, but it fills in a single
``prediction`` key, which TFMA refuses beside per-output keys; so this runs TFMA's
``ExtractEvaluateAndWriteResults`` on the table itself, as ``analyze_raw_data`` does inside.
"""
from __future__ import annotations

import numpy as np

OUTPUTS = ("discriminator", "cas")


def _eval_config(with_cas: bool, sliced: bool):
    # The config protos themselves: TFMA 0.47 also re-exports them as tfma.ModelSpec etc., 0.52 not.
    from tensorflow_model_analysis.proto import config_pb2

    outputs = OUTPUTS if with_cas else OUTPUTS[:1]
    keys = {"discriminator": ("is_real", "d_probability", "d_weight"), "cas": ("cas_target", "cas_correct", "cas_weight")}
    spec = config_pb2.ModelSpec(label_keys={o: keys[o][0] for o in outputs}, prediction_keys={o: keys[o][1] for o in outputs},
                          example_weight_keys={o: keys[o][2] for o in outputs})
    weighted = config_pb2.ExampleWeightOptions(weighted=True, unweighted=False)
    metrics = [config_pb2.MetricsSpec(output_names=["discriminator"], example_weights=weighted, metrics=[
        config_pb2.MetricConfig(class_name="BinaryAccuracy"), config_pb2.MetricConfig(class_name="AUC")]),
        config_pb2.MetricsSpec(output_names=["discriminator"], example_weights=config_pb2.ExampleWeightOptions(unweighted=True),
                         metrics=[config_pb2.MetricConfig(class_name="ExampleCount")])]
    if with_cas:
        metrics.append(config_pb2.MetricsSpec(output_names=["cas"], example_weights=weighted, metrics=[
            config_pb2.MetricConfig(class_name="BinaryAccuracy"), config_pb2.MetricConfig(class_name="WeightedExampleCount")]))
    slices = [config_pb2.SlicingSpec()] + ([config_pb2.SlicingSpec(feature_keys=["label"])] if sliced else [])
    return config_pb2.EvalConfig(model_specs=[spec], metrics_specs=metrics, slicing_specs=slices)


def examples_table(real_labels, d_real_logits, fake_labels, d_fake_logits, cas_predictions=None):
    """The pandas table TFMA evaluates: one row per held-out real image, then one per generated one."""
    import pandas as pd

    real_labels, fake_labels = np.asarray(real_labels, np.int64), np.asarray(fake_labels, np.int64)
    d_real, d_fake = (np.asarray(x, np.float64).reshape(-1) for x in (d_real_logits, d_fake_logits))
    if len(d_real) != len(real_labels) or len(d_fake) != len(fake_labels):
        raise ValueError("one discriminator logit per image, real and generated")
    n_real, n_fake = len(real_labels), len(fake_labels)
    total = n_real + n_fake
    table = pd.DataFrame({
        "label": np.concatenate([real_labels, fake_labels]),
        "is_real": np.concatenate([np.ones(n_real), np.zeros(n_fake)]),
        "d_probability": 1.0 / (1.0 + np.exp(-np.concatenate([d_real, d_fake]))),
        # equal total weight for real and generated rows: BinaryAccuracy is then the balanced accuracy
        "d_weight": np.concatenate([np.full(n_real, 0.5 * total / n_real), np.full(n_fake, 0.5 * total / n_fake)]),
    })
    if cas_predictions is not None:
        cas_predictions = np.asarray(cas_predictions, np.int64)
        if len(cas_predictions) != n_real:
            raise ValueError("one CAS prediction per held-out real image")
        table["cas_correct"] = np.concatenate([(cas_predictions == real_labels).astype(np.float64), np.zeros(n_fake)])
        table["cas_target"] = np.ones(n_real + n_fake)
        table["cas_weight"] = np.concatenate([np.ones(n_real), np.zeros(n_fake)])  # generated rows: not CAS's
    return table


def write_eval_result(out_dir: str, table, sliced: bool = True) -> None:
    """Evaluates ``table`` (``examples_table``) with TFMA and writes the EvalResult into ``out_dir``."""
    import apache_beam as beam
    import pyarrow as pa
    import tensorflow_model_analysis as tfma
    from tfx_bsl.arrow import table_util

    config = _eval_config("cas_correct" in table.columns, sliced)
    batch = table_util.CanonicalizeRecordBatch(pa.RecordBatch.from_pandas(table, preserve_index=False))
    with beam.Pipeline() as pipeline:
        _ = (pipeline | "Table" >> beam.Create([batch])
             | "TFMA" >> tfma.ExtractEvaluateAndWriteResults(eval_config=config, output_path=out_dir))


def per_class_metrics(out_dir: str) -> dict:
    """{slice: {output: {metric: value}}} read back with ``tfma.load_eval_result``; slice "overall"
    or the class index as a string."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(out_dir)
    table = {}
    for slice_key, metrics in result.slicing_metrics:
        name = "overall" if not slice_key else str(dict(slice_key)["label"])
        table[name] = {output: {metric: value.get("doubleValue") for metric, value in by_metric.items()}
                       for output, by_sub_key in metrics.items() for by_metric in [by_sub_key.get("", {})]}
    return table
