"""What this CPU computes fast (bfloat16, int8 dot products), read from /proc/cpuinfo without PyTorch.

It decides two things: whether the bf16 backend is worth trying, and the int8 quantization
recipe. CPUs with VNNI (AVX-512 VNNI, AVX-VNNI, AMX) multiply int8 into 32-bit sums; older
AVX2 CPUs add pairs of products in 16 bits, which saturate on full-range int8 weights, so
there weights keep 7 bits (``reduce_range``) and lose a little precision.
"""

from __future__ import annotations

import hashlib
import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@cache
def _cpuinfo() -> tuple[str, frozenset[str]]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: assume nothing special
        return platform.processor(), frozenset()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, frozenset(flags)


def native_bf16() -> bool:
    """True when this CPU computes bfloat16 in hardware (otherwise PyTorch emulates it, slowly)."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpuinfo()[1])


def native_int8_dot() -> bool:
    """True when this CPU has VNNI-style int8 dot products (no 16-bit saturation)."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & _cpuinfo()[1])


def int8_recipe() -> str:
    """Name of the int8 quantization recipe for this CPU: per-channel, full range or reduced range."""
    return "pc" if native_int8_dot() else "pc-rr"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "none"


def machine_signature(threads: int) -> str:
    """A short key for "this CPU, these libraries, this many threads": a backend verdict holds only for it."""
    model, flags = _cpuinfo()
    wanted = sorted(f for f in flags if f.startswith(("avx", "amx")) or "vnni" in f)
    text = "|".join([platform.machine(), model, *wanted, _version("onnxruntime"), _version("torch"), str(threads)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]
