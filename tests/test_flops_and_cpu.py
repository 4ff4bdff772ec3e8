"""The FLOP accounting of benchmarks/flops.py against hand-counted models, the DCGAN size options,
and the CPU description that picks the precision (an AVX2-only CPU, or oneDNN capped to AVX2, must
train in float32)."""
import keras
import pytest
import tensorflow as tf

from benchmarks import flops as flops_lib
from benchmarks.flops import forward_macs, layer_efficiency, measure_peak, step_flops_per_image
from benchmarks.train_throughput import make_discriminator_model, make_generator_model
from tfx_gan.training import devices
from tfx_gan.training.config import ConfigError, TrainConfig
from tfx_gan.training.models import build_models


def test_forward_macs_of_the_tf_tutorial_dcgan_counted_by_hand():
    # G: Dense 100 -> 7*7*256; ConvT 5x5 256->128 over 7x7 inputs; ConvT 5x5 128->64 over 7x7;
    # ConvT 5x5 64->1 over 14x14 (a transposed conv costs input pixels x kernel area x in x out).
    g = 100 * 12544 + 49 * 25 * 256 * 128 + 49 * 25 * 128 * 64 + 196 * 25 * 64 * 1
    # D: Conv 5x5 s2 1->64 to 14x14 outputs; Conv 5x5 s2 64->128 to 7x7; Dense 6272 -> 1.
    d = 196 * 25 * 1 * 64 + 49 * 25 * 64 * 128 + 6272
    generator, discriminator = make_generator_model(), make_discriminator_model()
    assert forward_macs(generator) == g == 51_744_000
    assert forward_macs(discriminator) == d
    assert step_flops_per_image(generator, discriminator) == 6 * (g + 2 * d)


def test_dcgan_size_options_shrink_the_nets_as_documented():
    tutorial = TrainConfig.from_dict({"architecture": "conditional_dcgan", "g_upsampling": "resize"})
    lean = tutorial.replace(g_width=0.5, g_base_kernel=3, d_kernel=3)
    g_full, d_full = build_models(tutorial, (28, 28, 1), 10)
    g_lean, d_lean = build_models(lean, (28, 28, 1), 10)
    # G: Dense (100 + 50 label dims) -> 7x7x128; ConvT 3x3 128->64 at 7x7; resize, conv 3x3 64->32 at
    # 14x14; resize, conv 3x3 32->1 at 28x28. D: 3x3 stride-2 convs 1->64 and 64->128, Dense 6272 -> 1.
    assert forward_macs(g_lean) == 150 * 6272 + 49 * 9 * 128 * 64 + 196 * 9 * 64 * 32 + 784 * 9 * 32
    assert forward_macs(d_lean) == 196 * 9 * 64 + 49 * 9 * 64 * 128 + 6272  # (the projection has no kernel)
    assert forward_macs(g_full) > 5 * forward_macs(g_lean)
    assert g_lean.output_shape == g_full.output_shape == (None, 28, 28, 1)
    with pytest.raises(ConfigError, match="training.g_base_kernel: 4 is not one of: 1, 3, 5"):
        TrainConfig.from_dict({"g_base_kernel": 4})
    with pytest.raises(ConfigError, match=r"training.g_width: must be in \(0, 4\]"):
        TrainConfig.from_dict({"g_width": 0})


def test_peak_and_layer_efficiency_are_measured_not_assumed():
    peak = measure_peak(repeats=1)
    assert peak["peak_gflops"] == max(peak["matmul_gflops"], peak["conv_gflops"]) > 1
    rows = layer_efficiency(make_discriminator_model(), batch=8, repeats=1)
    assert [r["kind"] for r in rows] == ["Conv2D", "Conv2D", "Dense"]
    assert rows[1]["mflops_per_batch"] == pytest.approx(6 * 49 * 25 * 64 * 128 * 8 / 1e6)
    assert all(r["ms"] > 0 and r["gflops"] > 0 for r in rows)


def _op_types_feeding_outputs(fn) -> set[str]:
    """Op types a tf.function's outputs depend on by value (not through Shape ops alone, which
    Grappler folds when shapes are static): what survives TF's pruning of unused work."""
    graph = fn.get_concrete_function().graph
    seen, stack = set(), [t.op for t in graph.outputs]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type not in ("Shape", "ShapeN", "Size", "Rank"):
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return {graph.get_operation_by_name(name).type for name in seen}


def test_a_layer_is_timed_with_all_three_passes():
    # The gradients of a sum need neither the forward output nor its value, so a timed function
    # that returned only the gradients would let TF prune the forward conv and the layer would
    # seem 1.5x faster. Checked on the graph, not with a clock: a timing race flakes under load.
    layer = keras.layers.Conv2D(128, 3, padding="same")
    keras.Sequential([keras.Input((28, 28, 128)), layer])
    x = tf.random.normal([4, 28, 28, 128])
    timed = _op_types_feeding_outputs(flops_lib._train_pass(layer, x))
    assert {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"} <= timed

    @tf.function
    def gradients_only():  # the mistake the check exists for: it must be told apart
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x, training=True))
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(y, [x] + layer.trainable_variables)])

    assert "Conv2D" not in _op_types_feeding_outputs(gradients_only)


def test_onednn_capped_to_avx2_means_no_native_bf16_and_float32_training(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    info = devices.cpu_info()
    assert not info["native_bf16"] and info["isa"].startswith("AVX2")
    assert devices.resolve_precision("auto") == "float32"  # no GPU on the test machines
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    info = devices.cpu_info()
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(info["flags"]))
    assert info["native_bf16"] == has_bf16
    assert devices.resolve_precision("auto") == ("mixed_bfloat16" if has_bf16 else "float32")
