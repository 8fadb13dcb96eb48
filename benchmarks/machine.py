"""What a job ran on, and how much memory it took."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict[str, Any]:
    """The machine and library versions, with a one-line ``label`` for tables."""
    import darts
    import torch

    cpu = _cpu_model()
    n_cpu = os.cpu_count() or 1
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    label = f"GPU: {gpu}" if gpu else f"CPU only: {n_cpu} cores ({cpu})"
    info: dict[str, Any] = {
        "label": label,
        "cpu": cpu,
        "cpu_count": n_cpu,
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "darts": darts.__version__,
    }
    # from the package metadata: importing neuralforecast imports ray and Lightning's `lightning` package,
    # which adds a console handler of its own (every Lightning message then printed twice)
    try:
        info["neuralforecast"] = importlib.metadata.version("neuralforecast")
    except importlib.metadata.PackageNotFoundError:
        info["neuralforecast"] = None
    return info


def machine_line() -> str:
    """One line for a measurement script's header: the device (GPU name, or CPU cores and model), torch and threads."""
    import torch

    return f"{describe_machine()['label']}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"


def _status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


@dataclass
class PeakMemory:
    """Measure a block's peak memory: GPU allocations on CUDA, else the process's resident set.

    On Linux the process's peak RSS is reset at ``start`` (``/proc/self/clear_refs``), so the figure
    belongs to the block; where that is not possible it is the process's peak since it started,
    and ``kind`` says so.
    """

    kind: str = ""
    peak_mb: float | None = None

    def start(self) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            self.kind = "cuda_max_allocated"
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.kind = "process_peak_rss"
        except OSError:
            self.kind = "process_peak_rss_since_process_start"

    def stop(self) -> float | None:
        import torch

        if self.kind == "cuda_max_allocated":
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            hwm = _status_kib("VmHWM")
            if hwm is None:  # no /proc: getrusage reports KiB on Linux, bytes on macOS
                hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak_mb = hwm / 1024
        return self.peak_mb
