"""helpers.hardware: the CPU's flags and model, native bfloat16, the hardware record and its one line."""
import json

import torch

from helpers import hardware
from helpers.hardware import cpu_flags, describe_hardware, device_name, get_device, hardware_summary, native_bf16
from helpers.precision import training_precision


def test_cpu_flags_come_from_cpuinfo_and_are_unknown_elsewhere(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx512f avx512_bf16\n\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") is None                  # macOS, Windows: no /proc/cpuinfo
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: None)
    assert not native_bf16("cpu")
    assert training_precision("cpu") == "fp32"                      # unknown flags: float32


def test_hardware_record_is_json_and_names_what_decides_the_digits(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: {"avx512f", "amx_bf16"})
    info = describe_hardware("cpu", "bf16")
    assert json.loads(json.dumps(info)) == info
    assert info["device"] == "cpu" and info["bf16_flags"] == ["amx_bf16"] and info["native_bf16"] is True
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["threads"] == torch.get_num_threads() and info["precision"] == "bf16"
    assert torch.__version__.startswith(info["versions"]["torch"])     # "2.13.0" of "2.13.0+cpu"
    assert {"python", "numpy", "spacy", "transformers", "onnxruntime"} <= set(info["versions"])
    line = hardware_summary(info)
    assert "amx_bf16" in line and f"{info['threads']} threads" in line and "bf16" in line
    monkeypatch.setattr(hardware, "cpu_flags", lambda *args: None)
    assert "unknown" in hardware_summary(describe_hardware("cpu", "fp32"))


def test_get_device_and_device_name():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert device_name("cpu") == f"cpu ({torch.get_num_threads()} threads, {hardware.platform.machine()})"
