"""What a run computes on: the device, the CPU's model and instruction-set flags, whether the
hardware computes bfloat16 natively, and the versions of the libraries that decide its digits.

* `get_device`: "auto" -> CUDA when present, else the CPU;
* `cpu_flags`, `cpu_model_name`: read from /proc/cpuinfo (None / the platform's name elsewhere);
* `native_bf16`: whether a device computes bfloat16 in hardware (the input of the precision rule,
  `helpers.precision.training_precision`);
* `describe_hardware` / `hardware_summary`: all of it as a dictionary for a run's record, and as
  one line; `package_versions`: installed versions without importing the packages;
* `device_name`: a device in a few words for a lesson's first line.
"""
from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import torch

BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")   # CPU instructions that compute bfloat16 natively
CUDA_BF16_CAPABILITY = (8, 0)                  # Ampere: the first GPUs with bfloat16 tensor cores
VERSIONED_PACKAGES = ("torch", "numpy", "spacy", "transformers", "onnxruntime")


def get_device(name: str = "auto") -> torch.device:
    """`"auto"` is CUDA when present, else CPU; anything else is passed to torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_name(device) -> str:
    """'cpu (<threads> threads, <machine>)', e.g. 'cpu (2 threads, x86_64)', or 'cuda (<the GPU's name>)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads, {platform.machine()})"


def _cpuinfo_value(keys: Sequence[str], cpuinfo: str | os.PathLike) -> str | None:
    """The first non-empty value of one of `keys` in /proc/cpuinfo, or None (no such line, or no file:
    macOS, Windows, a container without /proc)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys and value.strip():
            return value.strip()
    return None


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str] | None:
    """The instruction-set flags of the CPU (the "flags" line on x86, "Features" on ARM), or None
    where they cannot be read."""
    value = _cpuinfo_value(("flags", "Features"), cpuinfo)
    return None if value is None else set(value.split())


def cpu_model_name(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name ("AMD EPYC 9R14"), from /proc/cpuinfo or, elsewhere, the platform."""
    return _cpuinfo_value(("model name",), cpuinfo) or platform.processor() or platform.machine() or "unknown"


def native_bf16(device, flags: set[str] | None = None, capability: tuple[int, int] | None = None) -> bool:
    """Whether `device` computes bfloat16 in hardware (not emulated, which is slower than float32).

    CUDA: compute capability 8.0 or newer (`capability` default: the device's). CPU: the
    AMX or AVX512-BF16 flag among `flags` (default: `cpu_flags()`; unknown means no).
    Not `torch.cuda.is_bf16_supported()` nor mkldnn's check: both answer True where
    bfloat16 is only emulated (a T4; an AVX512 CPU without BF16).
    """
    device = torch.device(device)
    if device.type == "cuda":
        capability = capability or torch.cuda.get_device_capability(device)
        return tuple(capability) >= CUDA_BF16_CAPABILITY
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        return bool(flags) and any(flag in flags for flag in BF16_CPU_FLAGS)
    return False


def describe_hardware(device, precision: str) -> dict:
    """What decides a run's digits besides code, data and seed, JSON-serialisable.

    {"device": "cpu" | "cuda", "name": CPU model or GPU name, "cpu_capability": torch's
    vector ISA ("AVX512", "AVX2", ...), "bf16_flags": the AMX / AVX512-BF16 flags present
    (None: flags unknown), "compute_capability": "8.0" (CUDA only), "native_bf16",
    "threads": torch's intra-op threads, "machine", "system", "precision",
    "versions": {package: version or None}}.
    """
    device = torch.device(device)
    flags = cpu_flags()
    info = {"device": device.type, "name": cpu_model_name(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_flags": None if flags is None else sorted(flag for flag in BF16_CPU_FLAGS if flag in flags),
            "threads": torch.get_num_threads(), "machine": platform.machine(), "system": platform.system()}
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        info.update(name=torch.cuda.get_device_name(device), compute_capability=f"{major}.{minor}",
                    cpu=info["name"])
    info["native_bf16"] = native_bf16(device, flags=flags or set())
    info["precision"] = precision
    info["versions"] = {"python": platform.python_version(), **package_versions()}
    return info


def package_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions of `packages` (None where one is not installed), without importing them."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def hardware_summary(info: dict) -> str:
    """One line from `describe_hardware`: 'cpu AMD EPYC 9R14 (AVX512, avx512_bf16), 2 threads, bf16, torch 2.13.0'."""
    if info["device"] == "cuda":
        what = f"cuda {info['name']} (compute capability {info['compute_capability']})"
    else:
        flags = "bf16 flags unknown" if info["bf16_flags"] is None else (", ".join(info["bf16_flags"])
                                                                        or "no native bf16")
        what = f"cpu {info['name']} ({info['cpu_capability']}, {flags})"
    return f"{what}, {info['threads']} threads, {info['precision']}, torch {info['versions'].get('torch')}"
