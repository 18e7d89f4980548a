"""The machine a result was measured on: CPU, cores, memory, load, torch and GPU.

Recorded beside every benchmark and evaluation result, so a figure says where it came from.
Standard library only (torch is named only when the caller already imported it).
"""
from __future__ import annotations

import os
import platform
import sys


def machine() -> dict:
    """CPU model, cores, memory, load average, and torch / GPU when torch is already imported."""
    info = {"platform": platform.platform(), "python": platform.python_version(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["memory_gb"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        info["cpu"] = platform.processor()
    try:
        info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info
