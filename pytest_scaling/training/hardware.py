"""Device and precision detection, peak FLOP/s (calibrated on CPU, tabulated on GPU) and MFU.

MFU = achieved model FLOP/s / peak FLOP/s of the device.

* CPU: the peak is the best fp32 matmul throughput measured in this process at the run's thread count
  (square ``torch.mm`` of a few sizes, best of several timings), cached per thread count.
* GPU: dense bf16 tensor-core peaks from the vendors' datasheets (:data:`GPU_PEAK_BF16`), matched on
  ``torch.cuda.get_device_name``. Unknown GPUs have no peak (MFU ``None``).

``PYTEST_SCALING_PEAK_FLOPS`` (FLOP/s) overrides the peak on any device. Data-parallel runs count the
peak of every process. A CPU run in bf16 is still measured against the fp32 peak.

Threads: under pytest-xdist every worker gets ``cores // workers`` threads (:func:`default_threads`);
oversubscribed OpenMP threads made training 5-10x slower on a shared 2-core machine.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import platform
import time
import warnings

import torch

from ..errors import ScalingError
from .topology import sibling_processes

__all__ = [
    "GPU_PEAK_BF16",
    "available_cores",
    "cpu_has_native_bf16",
    "cpu_peak_flops",
    "default_threads",
    "device_name",
    "mfu",
    "peak_flops",
    "resolve_device",
    "resolve_precision",
    "set_flush_denormal",
]

# Dense (no sparsity) bf16 peak FLOP/s. Matched in order on a substring of the device name, so the
# more specific names come first ("H100 PCIe" before "H100", "L40S" before "L40" before "L4").
GPU_PEAK_BF16: tuple[tuple[str, float], ...] = (
    ("B200", 2250e12),
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX A6000", 155e12),
)

_CPU_PEAK: dict[int, float] = {}
_CALIBRATION_SIZES = (256, 512, 1024)
_CALIBRATION_SECONDS = 0.3  # best of many timings within this window: robust to transient load


def resolve_device(device: str = "auto") -> str:
    """``"auto"``: ``"cuda"`` when a GPU is visible, else ``"cpu"``. ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ScalingError("device 'cuda' requested but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise ScalingError(f"unknown device {device!r} (expected 'auto', 'cpu' or 'cuda')")
    return device


def resolve_precision(precision: str, device: str) -> str:
    """``"auto"`` -> ``"bf16"`` (autocast) on a GPU that supports it, ``"fp32"`` otherwise.

    The CPU always trains in fp32 under ``"auto"``: autocast bf16 on CPU is far slower without native
    bf16 matmul (about 100x on AVX2) and, even with AMX, it was measured slower for the tiny widths a
    ladder starts at (measured on an AMX Xeon: 0.75x fp32 tokens/s at width 64, 1.13x at width 128,
    although a large bf16 matmul ran 4x faster). Choosing per width would mix precisions in one ladder.
    An explicit ``"bf16"`` on a CPU without native bf16 matmul (:func:`cpu_has_native_bf16`) warns.
    """
    if precision == "auto":
        return "bf16" if device == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ScalingError(f"unknown precision {precision!r} (expected 'auto', 'fp32' or 'bf16')")
    if precision == "bf16" and device == "cpu" and not cpu_has_native_bf16():
        warnings.warn("bf16 on a CPU without native bf16 matmul is very slow; use fp32", stacklevel=2)
    return precision


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 matmul natively (AVX512-BF16 / AMX), from torch's dispatch level and
    the kernel's CPU flags (Linux)."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX"):
        return False
    flags = _cpuinfo()
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def _cpuinfo() -> str:
    """The text of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_peak_flops(threads: int | None = None, *, refresh: bool = False) -> float:
    """Best fp32 matmul FLOP/s on this CPU at ``threads`` threads (default: the current setting).

    Measured once per process and thread count (about 0.3 s), then cached; ``refresh`` measures again
    and keeps the better figure (a measurement taken while other processes held the cores is low).
    """
    threads = threads or torch.get_num_threads()
    if threads in _CPU_PEAK and not refresh:
        return _CPU_PEAK[threads]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    best = 0.0
    try:
        gen = torch.Generator().manual_seed(0)
        mats = [(torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen), torch.empty(n, n))
                for n in _CALIBRATION_SIZES]
        deadline = time.perf_counter() + _CALIBRATION_SECONDS
        while time.perf_counter() < deadline:
            for a, b, out in mats:
                n = a.shape[0]
                reps = max(1, int(2e8 / n**3))  # >= ~0.4 GFLOP per timing
                start = time.perf_counter()
                for _ in range(reps):
                    torch.mm(a, b, out=out)
                best = max(best, 2 * n**3 * reps / (time.perf_counter() - start))
    finally:
        torch.set_num_threads(previous)
    _CPU_PEAK[threads] = max(best, _CPU_PEAK.get(threads, 0.0))
    return _CPU_PEAK[threads]


def _gpu_peak(name: str) -> float | None:
    for key, peak in GPU_PEAK_BF16:
        if key in name:
            return peak
    return None


def peak_flops(device: str, threads: int | None = None) -> float | None:
    """Peak FLOP/s of ``device`` ("cpu" or "cuda"), or ``None`` for an unknown GPU."""
    override = os.environ.get("PYTEST_SCALING_PEAK_FLOPS")
    if override:
        return float(override)
    if device == "cpu":
        return cpu_peak_flops(threads)
    return _gpu_peak(torch.cuda.get_device_name())


def device_name(device: str, threads: int | None = None) -> str:
    """A readable description: ``"cpu: Intel(R) Xeon(R) Processor (2 threads)"``, ``"cuda: NVIDIA H100"``."""
    if device == "cuda":
        return f"cuda: {torch.cuda.get_device_name()}"
    return f"cpu: {_cpu_model()} ({threads or torch.get_num_threads()} threads)"


def _cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def available_cores() -> int:
    """This process's share of the CPU cores it may run on (shared out among its sibling processes)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // sibling_processes())


def default_threads() -> int | None:
    """CPU threads for a run: the cores shared out among the processes started together on this machine,
    pytest-xdist workers or torchrun's local ranks (oversubscribed OpenMP threads slow training down
    several-fold), else ``None`` (torch's setting)."""
    return available_cores() if sibling_processes() > 1 else None


def mfu(flops_per_second: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: achieved over peak, ``None`` when the peak is unknown."""
    return flops_per_second / peak if peak else None


_FLUSH_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_FLUSH_ON = _FLUSH_CALLBACK(lambda _: torch.set_flush_denormal(True))
_FLUSH_OFF = _FLUSH_CALLBACK(lambda _: torch.set_flush_denormal(False))


@functools.cache
def _libgomp() -> ctypes.CDLL | None:
    """The GNU OpenMP runtime bundled with (and used by) this torch build, if any."""
    if not torch.backends.openmp.is_available():
        return None
    found = glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*.so*"))
    try:
        lib = ctypes.CDLL(found[0]) if found else None
        if lib is not None:
            lib.GOMP_parallel.argtypes = [_FLUSH_CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    except (OSError, AttributeError):
        return None
    return lib


def set_flush_denormal(on: bool) -> None:
    """``torch.set_flush_denormal`` in the calling thread and in every OpenMP worker thread.

    The flag lives in each thread's floating-point control register, so torch's own call misses the
    intra-op workers. They are reached by one OpenMP parallel region (libgomp's ``GOMP_parallel``) that
    sets it in each; where torch does not use libgomp only the calling thread is set.
    """
    torch.set_flush_denormal(on)
    gomp = _libgomp()
    if gomp is not None and torch.get_num_threads() > 1:
        gomp.GOMP_parallel(_FLUSH_ON if on else _FLUSH_OFF, None, 0, 0)
