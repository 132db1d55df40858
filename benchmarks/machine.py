"""What the figures were measured on: CPU, cores, versions, thread counts."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> str:
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / (1 << 30):.0f}"
    except (ValueError, OSError, AttributeError):
        return "?"


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def blas_threads() -> str:
    """numpy's BLAS and its thread count, via threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to see)"
    found = [f"{pool.get('internal_api')} {pool.get('version') or ''} "
             f"{pool.get('num_threads')} threads".replace("  ", " ")
             for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return ", ".join(found) or "none found"


def ort_threads(options: Any = None) -> str:
    """onnxruntime's thread settings; 0 means its default (one intra-op thread per physical
    core, sequential execution so no inter-op pool)."""
    if options is None:
        import onnxruntime as ort

        options = ort.SessionOptions()
    intra, inter = options.intra_op_num_threads, options.inter_op_num_threads
    return (f"intra_op {intra or 'default'}, inter_op {inter or 'default'}, "
            f"{str(options.execution_mode).rsplit('.', 1)[-1]}")


def commit() -> str:
    """The checked-out commit of the project (read-only git calls), or "unknown"."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, text=True, capture_output=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" with uncommitted changes" if dirty else "")


def describe() -> list[str]:
    """Header lines: date, machine, versions, threads."""
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        import onnxruntime as ort

        ort_line = f"onnxruntime {ort.__version__} ({ort_threads()})"
    except ImportError:
        ort_line = "onnxruntime not installed"
    return [
        f"date: {today}; graphkit {version('graphkit-backprop')} at commit {commit()}",
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {memory_gib()} GiB, "
        f"{platform.system()} {platform.machine()}",
        f"versions: python {platform.python_version()}, numpy {np.__version__}, "
        f"{ort_line}, onnx {version('onnx')}, micrograd {version('micrograd')}, "
        f"pydantic {version('pydantic')}, networkx {version('networkx')}",
        f"threads: numpy BLAS {blas_threads()}; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
    ]
