"""Where a training session ran: the versions and the processor that decide a run's last bits.

A run repeats bit for bit from its seed on one software stack and one kind of processor. On another CPU torch
and its convolution library pick other kernels (by instruction set: `cpu_capability`), whose sums round
differently in the last bits, and training amplifies any difference until the run ends elsewhere in the spread
between seeds (docs/architecture.md, "Reproducibility", has a measured case).
Each session's record in metrics.jsonl says where it ran, and a resume onto another stack warns.
"""

from __future__ import annotations

import platform
from importlib import metadata

import torch

KEYS = ("latentquant", "torch", "python", "cpu", "cpu_capability", "device")


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what the platform module knows of it."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe(device: torch.device) -> dict[str, str]:
    """This session's stack, as the `environment` record of metrics.jsonl stores it."""
    try:
        version = metadata.version("latentquant")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "unknown"
    accelerator = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {"latentquant": version, "torch": torch.__version__, "python": platform.python_version(),
            "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "device": accelerator}


def differences(before: dict[str, object], now: dict[str, str]) -> list[str]:
    """What changed between two sessions' records, as "key old -> new"; keys a record lacks are not compared."""
    return [f"{key} {before[key]} -> {now[key]}" for key in KEYS
            if key in before and key in now and before[key] != now[key]]
