"""What machine a benchmark ran on: every benchmark prints this line first and stores the dict in
its JSON, because the same kind of machine may be an AVX-512/AMX Intel or an AVX2-only AMD, and
training speed differs several-fold between them."""
from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from tfx_gan.training.devices import cpu_info


def describe() -> dict:
    """The CPU (model, vector flags, the ISA oneDNN may use, cores) and the software. Imports no
    TensorFlow (a benchmark without it stays light); GPUs are counted when it is already loaded."""
    tf = sys.modules.get("tensorflow")
    return {**cpu_info(), "platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": metadata.version("tensorflow"), "keras": metadata.version("keras"),
            "gpus": len(tf.config.list_physical_devices("GPU")) if tf else None, "loadavg": os.getloadavg()[0]}


def headline(machine: dict) -> str:
    return (f"machine: {machine['model']}, {machine['cores']} cores, {machine['isa']} "
            f"(flags: {' '.join(machine['flags']) or 'none of ' + 'avx2 fma avx512f'}), "
            f"TF {machine['tensorflow']}, {'?' if machine['gpus'] is None else machine['gpus']} GPU(s), "
            f"load {machine['loadavg']:.1f}")


def print_machine() -> dict:
    machine = describe()
    print(headline(machine), flush=True)
    return machine
