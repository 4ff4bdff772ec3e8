"""Where and in what precision training runs: ``mixed_precision`` and ``distribution`` resolved for
this machine, and which worker of a cluster writes the outputs."""
from __future__ import annotations

import json
import os

import tensorflow as tf


# The vector extensions that decide how fast a CPU trains (oneDNN picks its kernels by them).
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")
# ONEDNN_MAX_CPU_ISA values under which oneDNN still runs bfloat16 natively (oneDNN's ISA names).
_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
              "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "DEFAULT", "ALL")


def cpu_info() -> dict:
    """The CPU's model name, its VECTOR_FLAGS and ``isa``: what oneDNN may use, "AVX-512+AMX",
    "AVX-512" or "AVX2", lowered by ONEDNN_MAX_CPU_ISA when that is set (the way to run a fast CPU
    as a slow one: ONEDNN_MAX_CPU_ISA=AVX2 leaves oneDNN only the kernels an AVX2-only CPU has)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    present = [flag for flag in VECTOR_FLAGS if flag in flags]
    isa = "AVX-512+AMX" if "amx_bf16" in flags else "AVX-512" if "avx512f" in flags else \
        "AVX2" if "avx2" in flags else "no AVX2"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and cap not in ("ALL", "DEFAULT"):
        capped = "AVX2" if cap.startswith(("AVX2", "AVX", "SSE")) else "AVX-512" if "AMX" not in cap else isa
        if capped != isa:
            isa = f"{capped} (ONEDNN_MAX_CPU_ISA={cap} on an {isa} CPU)"
    bf16 = bool({"avx512_bf16", "amx_bf16"} & flags) and (not cap or cap in _BF16_ISAS)
    return {"model": model, "flags": present, "isa": isa, "native_bf16": bf16, "cores": os.cpu_count()}


def cpu_supports_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX512-BF16 or AMX, not capped below them)."""
    return cpu_info()["native_bf16"]


def resolve_precision(setting: str) -> str:
    """The Keras dtype policy for ``mixed_precision``. "auto": mixed_float16 (with loss scaling) on a
    GPU; on CPU mixed_bfloat16 where the CPU has native bf16 (AVX512-BF16/AMX: measured ~1.4x faster
    here, see benchmarks/train_throughput.py), else float32."""
    if setting == "off":
        return "float32"
    if setting != "auto":
        return setting
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_supports_bf16() else "float32"


def resolve_strategy(setting: str) -> tf.distribute.Strategy:
    """"none": the default (no-op) strategy; "mirrored": MirroredStrategy over the local GPUs (or the
    CPU when there are none); "multi_worker": MultiWorkerMirroredStrategy from TF_CONFIG (create it
    at program start, before other TF work, as TF requires); "auto": multi_worker when TF_CONFIG
    names several workers, mirrored with >1 GPU, else none."""
    if setting == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("cluster", {})
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        if workers > 1:
            setting = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            setting = "mirrored"
        else:
            setting = "none"
    if setting == "none":
        return tf.distribute.get_strategy()
    if setting == "mirrored":
        devices = None if tf.config.list_logical_devices("GPU") else ["/cpu:0"]
        return tf.distribute.MirroredStrategy(devices=devices)
    if setting == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"distribution {setting!r} is not one of: auto, none, mirrored, multi_worker")


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """"none", "MirroredStrategy" or "MultiWorkerMirroredStrategy" (TF names the latter's class
    CollectiveAllReduceStrategy)."""
    name = type(strategy).__name__
    return {"_DefaultDistributionStrategy": "none", "CollectiveAllReduceStrategy": "MultiWorkerMirroredStrategy"
            }.get(name, name)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one worker that writes checkpoints, samples and logs (always, without a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())


def worker_dirs(strategy: tf.distribute.Strategy, *dirs: str) -> tuple[str, ...]:
    """``dirs`` on the chief; private scratch folders inside them on the other workers, which must
    still write their checkpoints (tf.distribute's rule) but not over the chief's."""
    if is_chief(strategy):
        return dirs
    return tuple(os.path.join(d, f"worker-tmp-{strategy.cluster_resolver.task_id}") for d in dirs)
