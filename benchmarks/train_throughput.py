"""Training throughput: our GAN train step vs the TensorFlow DCGAN tutorial's, side by side.

    python -m benchmarks.train_throughput [--steps 20] [--rounds 5] [--out outputs/benchmarks/train_throughput.json]

Both run in one process on the bundled digits (28x28x1), batch 256, the tutorial's DCGAN, BCE,
Adam 1e-4, noise 100. Variants run in alternating rounds (A B C A B C ...) so that load from
other processes on this shared machine hits them alike; each variant's first call (tracing) and
a warm-up round are excluded. Reported: median images/s over rounds and the median of the
per-round ratios to the reference.

reference       the tutorial's ``train_step``, written exactly as the tutorial writes it (two
                GradientTapes, one forward pass, simultaneous updates), float32, from_tensor_slices.
reference_bf16  the same under the Keras policy mixed_bfloat16: what bf16 alone gives.
ours_fp32       our step (``tfx_gan.training.step.GanTraining``), same model/loss/optimiser, no
                augmentation, no EMA, float32: what our step and layers give without bf16.
ours_bf16_keras_layers  ours in mixed_bfloat16 but with stock Keras BatchNormalization and
                Dropout and every layer in bf16 (ablation of the layer choices in
                training/models.py: fused batch norm, 16-bit dropout masks, float32
                LeakyReLU and first D convolution).
ours            our step as shipped, ``mixed_precision: auto`` (mixed_bfloat16 on this CPU): the
                apples-to-apples comparison with the reference (same work per image).
ours_xla        ours with ``jit_compile: true`` (XLA): the check behind leaving it off on CPU.
ours_default    our default TrainConfig at batch 256 (its DiffAugment/EMA settings on): what a
                default training run gets.
pipeline        what ``./gan run`` trains (pipeline/configs/digits.yaml's training section, its
                batch of 64 and lean net sizes), as shipped (bf16 where the CPU has it).
pipeline_fp32   the same in float32: what an AVX2-only CPU runs.
pipeline_tutorial_size[_fp32]  the same with the tutorial's net sizes (g_width 1, g_base_kernel 5,
                d_kernel 5): the default before the lean sizes.

It also reports each variant's FLOPs per image (benchmarks/flops.py), its achieved GFLOP/s as a
fraction of the fp32 peak measured in this process (a 2048^3 matmul and a 3x3 convolution), and
each kernel layer of the pipeline's nets trained alone at its real shapes. The CPU (model, vector
flags, the ISA oneDNN may use) is printed first: ``ONEDNN_MAX_CPU_ISA=AVX2`` runs an AVX-512/AMX
CPU with only the kernels an AVX2-only CPU has.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tfx_gan  # noqa: E402,F401  sets the Keras environment before TensorFlow is imported

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

BATCH_SIZE = 256
NOISE_DIM = 100


# ------------------------------------------------------------------ the tutorial, verbatim (Keras 3)
def make_generator_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=(100,)))
    model.add(layers.Dense(7 * 7 * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((7, 7, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"))
    return model


def make_discriminator_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=(28, 28, 1)))
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


def make_reference(train_images, policy: str = "float32"):
    keras.mixed_precision.set_global_policy(policy)  # "float32" is the tutorial as written
    generator = make_generator_model()
    discriminator = make_discriminator_model()
    keras.mixed_precision.set_global_policy("float32")
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)

    def discriminator_loss(real_output, fake_output):
        real_output, fake_output = tf.cast(real_output, tf.float32), tf.cast(fake_output, tf.float32)
        real_loss = cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(fake_output):
        fake_output = tf.cast(fake_output, tf.float32)
        return cross_entropy(tf.ones_like(fake_output), fake_output)

    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH_SIZE, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = generator_loss(fake_output)
            disc_loss = discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))

    dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(60000).batch(BATCH_SIZE, drop_remainder=True)
    iterator = iter(dataset.repeat())

    def run(steps):
        for _ in range(steps):
            train_step(next(iterator))

    run.generator = generator  # benchmarks/time_to_quality.py scores it
    run.discriminator, run.batch = discriminator, BATCH_SIZE
    return run


# ------------------------------------------------------------------ ours
def make_ours(files, config, layer_options: dict | None = None, image_shape=(28, 28, 1), num_classes: int | None = 10):
    """Our step; ``layer_options`` changes some of the shipped LayerOptions (an ablation)."""
    import dataclasses

    from tfx_gan.data.example_format import training_dataset
    from tfx_gan.training.models import SHIPPED_LAYERS
    from tfx_gan.training.devices import resolve_precision
    from tfx_gan.training.step import GanTraining

    strategy = tf.distribute.get_strategy()
    trainer = GanTraining(config, image_shape, num_classes, resolve_precision(config.mixed_precision),
                          layer_options=dataclasses.replace(SHIPPED_LAYERS, **(layer_options or {})))
    step_fn = trainer.make_step_fn(strategy)
    dataset = training_dataset(files, image_shape, config.batch_size * config.d_steps_per_g_step, seed=config.seed)
    iterator = iter(dataset)

    def run(steps):
        metrics = None
        for _ in range(steps):
            metrics = step_fn(next(iterator))
        float(metrics["d_loss"])  # wait for the last step

    run.generator = trainer.export_generator  # the EMA generator when there is one: what ships
    run.discriminator, run.batch = trainer.discriminator, config.batch_size
    return run


def pipeline_training_config(**changes):
    """The ``training`` section of the pipeline's default config (what ./gan run trains), changed."""
    import yaml

    from tfx_gan.training.config import TrainConfig

    with open(os.path.join(os.path.dirname(__file__), "..", "pipeline", "configs", "digits.yaml")) as f:
        section = yaml.safe_load(f)["training"]
    return TrainConfig.from_dict({**section, **changes})


# The tutorial's net sizes (TrainConfig's defaults), which the pipeline's config trained before.
TUTORIAL_SIZE = {"g_width": 1.0, "g_base_kernel": 5, "d_kernel": 5}


def make_builders(files, train_images) -> dict:
    from tfx_gan.training.config import TrainConfig

    same = dict(architecture="dcgan_28", loss="bce", batch_size=BATCH_SIZE, g_learning_rate=1e-4,
                d_learning_rate=1e-4, beta_1=0.9, beta_2=0.999, diffaugment="", ema_decay=0.0)
    keras_layers = {"fused_batch_norm": False, "float32_input_conv": False, "dropout_dtype": None,
                    "fast_dropout": False, "activation_dtype": None}
    return {
        "reference": lambda: make_reference(train_images),
        "reference_bf16": lambda: make_reference(train_images, "mixed_bfloat16"),
        "ours_fp32": lambda: make_ours(files, TrainConfig.from_dict({**same, "mixed_precision": "off"})),
        "ours_bf16_keras_layers": lambda: make_ours(
            files, TrainConfig.from_dict({**same, "mixed_precision": "mixed_bfloat16"}), keras_layers),
        "ours": lambda: make_ours(files, TrainConfig.from_dict({**same, "mixed_precision": "auto"})),
        "ours_xla": lambda: make_ours(files, TrainConfig.from_dict({**same, "mixed_precision": "auto",
                                                                     "jit_compile": True})),
        "ours_default": lambda: make_ours(files, TrainConfig.from_dict({"batch_size": BATCH_SIZE})),
        # What ./gan run trains (pipeline/configs/digits.yaml, its batch size): as shipped, and in
        # float32 (what an AVX2-only CPU runs), and the tutorial-sized nets it replaced.
        "pipeline": lambda: make_ours(files, pipeline_training_config()),
        "pipeline_fp32": lambda: make_ours(files, pipeline_training_config(mixed_precision="off")),
        "pipeline_tutorial_size": lambda: make_ours(files, pipeline_training_config(**TUTORIAL_SIZE)),
        "pipeline_tutorial_size_fp32": lambda: make_ours(files, pipeline_training_config(
            mixed_precision="off", **TUTORIAL_SIZE)),
    }


def run_rounds(runners: dict, steps: int, rounds: int) -> dict:
    """Images/s of each runner per round, variants alternating; round 0 is a warm-up."""
    rates = {name: [] for name in runners}
    for round_index in range(rounds + 1):
        for name, run in runners.items():
            start = time.perf_counter()
            run(steps)
            if round_index > 0:
                rates[name].append(steps * run.batch / (time.perf_counter() - start))
        print(f"round {round_index}/{rounds}: " + "  ".join(
            f"{n} {r[-1]:.0f}" for n, r in rates.items() if r) + " img/s", flush=True)
    return rates


def summarise(runners: dict, rates: dict, peak: dict) -> dict:
    """Median images/s, the median per-round ratio to the reference, and the achieved fraction of
    the measured fp32 peak (benchmarks/flops.py counts the FLOPs)."""
    from benchmarks.flops import step_flops_per_image

    results = {}
    for name, run in runners.items():
        ips = rates[name]
        flops = step_flops_per_image(run.generator, run.discriminator)
        gflops = statistics.median(ips) * flops / 1e9
        entry = {"batch_size": run.batch, "images_per_sec_median": statistics.median(ips),
                 "images_per_sec_rounds": ips, "step_mflops_per_image": flops / 1e6,
                 "achieved_gflops": gflops, "fraction_of_fp32_peak": gflops / peak["peak_gflops"]}
        if "reference" in rates and name != "reference":
            ratios = [ours / ref for ref, ours in zip(rates["reference"], ips)]
            entry["speedup_vs_reference_median"] = statistics.median(ratios)
            entry["speedup_vs_reference_rounds"] = ratios
        results[name] = entry
    return results


def print_tables(results: dict, peak: dict, layers: list[dict]) -> None:
    print(f"\nfp32 peak measured in this process: matmul {peak['matmul_gflops']:.0f} GFLOP/s, "
          f"conv {peak['conv_gflops']:.0f} GFLOP/s")
    print(f"\n{'variant':<30}{'batch':>6}{'images/s':>10}{'x reference':>13}{'MFLOP/img':>11}"
          f"{'GFLOP/s':>9}{'of peak':>9}")
    for name, r in results.items():
        ratio = r.get("speedup_vs_reference_median")
        print(f"{name:<30}{r['batch_size']:>6}{r['images_per_sec_median']:>10.0f}"
              f"{'' if ratio is None else f'{ratio:.2f}x':>13}{r['step_mflops_per_image']:>11.0f}"
              f"{r['achieved_gflops']:>9.0f}{r['fraction_of_fp32_peak']:>9.0%}")
    if layers:
        print(f"\nthe pipeline's nets in float32, each kernel layer trained alone (forward + both gradients):")
        print(f"{'layer':<44}{'input':>11}{'kernel':>15}{'MFLOP':>8}{'ms':>7}{'GFLOP/s':>9}{'of peak':>9}")
        for row in layers:
            print(f"{row['model'] + '/' + row['layer']:<44}{row['input']:>11}{row['kernel']:>15}"
                  f"{row['mflops_per_batch']:>8.0f}{row['ms']:>7.2f}{row['gflops']:>9.0f}"
                  f"{row['gflops'] / peak['peak_gflops']:>9.0%}")
        convs = convolutions_together(layers)
        print(f"{'all convolutions together':<44}{'':>11}{'':>15}{convs['mflops_per_batch']:>8.0f}"
              f"{convs['ms']:>7.2f}{convs['gflops']:>9.0f}{convs['gflops'] / peak['peak_gflops']:>9.0%}")


def convolutions_together(layers: list[dict]) -> dict:
    """The convolution layers' FLOPs over their time: the step's convolutions' share of the peak."""
    convs = [row for row in layers if row["kind"].startswith("Conv")]
    mflops, ms = sum(r["mflops_per_batch"] for r in convs), sum(r["ms"] for r in convs)
    return {"mflops_per_batch": mflops, "ms": ms, "gflops": mflops / ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="train steps per variant per round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--variants", default="reference,reference_bf16,ours_fp32,ours_bf16_keras_layers,ours,"
                                              "ours_xla,ours_default,pipeline,pipeline_fp32,pipeline_tutorial_size,"
                                              "pipeline_tutorial_size_fp32")
    parser.add_argument("--no_layers", action="store_true", help="skip the per-layer table")
    parser.add_argument("--out", default="outputs/benchmarks/train_throughput.json")
    args = parser.parse_args(argv)

    from benchmarks.flops import layer_efficiency, measure_peak
    from benchmarks.machine import print_machine
    from tfx_gan.data.example_format import write_tfrecords
    from tfx_gan.data.digits import digits_28x28

    machine = print_machine()
    digits, labels = digits_28x28()
    train_images = (digits[..., None].astype(np.float32) - 127.5) / 127.5
    tmp = os.path.join(os.path.dirname(os.path.abspath(args.out)), "throughput_tmp")
    files = write_tfrecords(digits, labels, os.path.join(tmp, "digits.tfrecord.gz"))

    builders = make_builders(files, train_images)
    runners = {}
    for name in (v.strip() for v in args.variants.split(",") if v.strip()):
        runners[name] = builders[name]()
        runners[name](2)  # trace and build
    peak = measure_peak()
    rates = run_rounds(runners, args.steps, args.rounds)
    results = summarise(runners, rates, peak)
    layers = []
    if not args.no_layers:
        from tfx_gan.training.models import build_models

        config = pipeline_training_config(mixed_precision="off")
        for net in build_models(config, (28, 28, 1), 10, "float32"):
            layers += layer_efficiency(net, config.batch_size)

    report = {"benchmark": "train_throughput", "steps_per_round": args.steps, "rounds": args.rounds,
              "machine": machine, "fp32_peak": peak, "results": results, "layers": layers,
              "convolutions_together": convolutions_together(layers) if layers else None}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print_tables(results, peak, layers)
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
