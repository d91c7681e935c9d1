"""benchmarks/gpu_check.py without a GPU: it refuses in one line, plans its three runs, builds its table."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("gpu_check", REPO_ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)

H200 = {"gpu": "NVIDIA H200", "compute_capability": "9.0", "torch": "2.13.0+cu128", "cuda": "12.8",
        "python": "3.12.3"}


def test_without_a_cuda_gpu_it_refuses_in_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the check would run")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path),
                           "--output-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "no CUDA GPU here" in done.stderr and "--allow-cpu" in done.stderr
    assert not (tmp_path / "out").exists()   # nothing ran


def test_a_missing_data_folder_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "environment", lambda: H200)
    assert gpu_check.main([str(tmp_path / "nowhere")]) == 2
    assert "no data folder at" in capsys.readouterr().err


SUMMARIES = {   # what the runner's summary.json says after each run (its "notebooks" rows, in short)
    "smoke": [{"notebook": "01_simple_rnn", "precision": "fp32", "minutes": 0.4, "test_accuracy": 0.5033},
              {"notebook": "04_convolutional_sentiment", "precision": "bf16", "minutes": 0.3,
               "error": "AssertionError: ONNX Runtime and torch differ by 8.85e-05 (> 1e-05)\ntraceback"},
              {"notebook": "07_deployment", "precision": "bf16", "minutes": 0.6, "test_accuracy": None,
               "result": "served sentiment, p50 2.0 ms"},
              {"notebook": "B_baselines", "precision": "bf16", "minutes": 0.2, "test_accuracy": None,
               "rows": [{"test_accuracy": 0.89}, {"test_accuracy": 0.85}]}],
    "full": [{"notebook": "02_upgraded_sentiment", "precision": "bf16", "minutes": 3.25, "test_accuracy": 0.8548,
              "beyond": None}],
    "smoke-fp16": [{"notebook": "03_faster_sentiment", "precision": "fp16", "minutes": 0.3, "test_accuracy": 0.61}],
}


def test_the_table_names_the_gpu_and_gives_each_notebooks_precision_minutes_and_result():
    rows = [row for run, notebooks in SUMMARIES.items() for row in gpu_check.table_rows(run, {"notebooks": notebooks})]
    table = gpu_check.markdown_table(rows, H200, {"smoke": 2.0, "full": 3.5, "smoke-fp16": 1.0})
    lines = table.splitlines()
    assert lines[0] == ("GPU check: NVIDIA H200, compute capability 9.0 | torch 2.13.0+cu128 (CUDA 12.8) "
                        "| Python 3.12.3")
    assert "| smoke | 01_simple_rnn | fp32 | 0.4 | test accuracy 50.33% |" in lines
    assert ("| smoke | 04_convolutional_sentiment | bf16 | 0.3 | FAILED: AssertionError: ONNX Runtime and torch "
            "differ by 8.85e-05 (> 1e-05) |") in lines
    assert "| smoke | 07_deployment | bf16 | 0.6 | no test accuracy (served sentiment, p50 2.0 ms) |" in lines
    assert "| smoke | B_baselines | bf16 | 0.2 | 2 results, test accuracy 85.00% to 89.00% |" in lines
    assert "| full | 02_upgraded_sentiment | bf16 | 3.2 | test accuracy 85.48% |" in lines
    assert "| smoke-fp16 | 03_faster_sentiment | fp16 | 0.3 | test accuracy 61.00% |" in lines
    assert lines[-1] == ("5 of 6 notebook runs passed; wall minutes per run: smoke 2.0, full 3.5, smoke-fp16 1.0 "
                         "(total 6.5).")


def test_three_runs_smoke_full_then_forced_fp16_and_the_report_files(tmp_path, monkeypatch, capsys):
    """The runner is replaced by a stand-in that writes a summary; what the check asks of it is recorded."""
    calls = []

    def runner(command, cwd, env, stdout):
        calls.append((command, env.get("SENTIMENT_PRECISION")))
        run = Path(command[command.index("--output-dir") + 1]).name
        (tmp_path / "out" / run / "summary.json").write_text(json.dumps({"notebooks": SUMMARIES[run]}))
        return subprocess.CompletedProcess(command, 1 if run == "smoke" else 0)

    monkeypatch.setattr(gpu_check, "environment", lambda: H200)
    monkeypatch.setattr(gpu_check.subprocess, "run", runner)
    monkeypatch.setenv("SENTIMENT_PRECISION", "fp32")   # the user's choice does not leak into the course-rule runs
    (tmp_path / "data").mkdir()
    code = gpu_check.main([str(tmp_path / "data"), "--output-dir", str(tmp_path / "out"), "--jobs", "3"])
    assert code == 1                                    # a notebook failed in the smoke run
    def option(command, name):
        return command[command.index(name) + 1] if name in command else None

    assert [(option(command, "--profile"), option(command, "--only"), precision,
             option(command, "--output-dir")) for command, precision in calls] == [
        ("smoke", None, None, str(tmp_path / "out" / "smoke")),
        ("full", "2,4,5", None, str(tmp_path / "out" / "full")),
        ("smoke", None, "fp16", str(tmp_path / "out" / "smoke-fp16"))]
    assert all(command[:3] == [sys.executable, "-m", "helpers.run"] and option(command, "--jobs") == "3"
               and option(command, "--data-dir") == str(tmp_path / "data") for command, _ in calls)
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["environment"] == H200 and report["jobs"] == 3 and len(report["rows"]) == 6
    printed = capsys.readouterr().out
    assert printed == (tmp_path / "out" / "gpu_check.md").read_text() and "| smoke-fp16 | 03_faster" in printed


def test_jobs_default_to_a_quarter_of_the_cores_from_one_to_four():
    assert [gpu_check.default_jobs(cores) for cores in (1, 2, 8, 16, 64)] == [1, 1, 2, 4, 4]
