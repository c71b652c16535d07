"""What every benchmark prints first: the CPU, its relevant flags, the cores, TensorFlow's version."""

import os
import platform


def describe():
    """A one-line description of this machine for benchmark output."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name") and model in ("", "unknown CPU", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
    import tensorflow as tf

    return (
        f"machine: {model}; flags: {' '.join(flag for flag in wanted if flag in flags) or 'none of interest'}; "
        f"cores: {os.cpu_count()}; TensorFlow {tf.__version__}; Python {platform.python_version()}"
    )
