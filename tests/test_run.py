"""The papermill batch runner: ordering, summaries, failure handling, in-place runs, its console."""
import json
import re
import threading
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from helpers import run as runner


def _write_notebook(path, sources, parameters=None, published=None):
    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["course"] = {"title": path.stem, "published_accuracy": published}
    cells = []
    if parameters is not None:
        cell = new_code_cell(parameters + "\nPROFILE = None\nDATA_DIR = None\nRESULTS_DIR = None")
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [new_code_cell(source) for source in sources]
    notebook.cells = cells
    nbformat.write(notebook, path)


# What a lesson's record call does, in miniature: the runner's parameters decide where it goes.
WRITE_METRICS = """
import json, pathlib
folder = pathlib.Path(RESULTS_DIR or "results-" + PROFILE) / NAME
folder.mkdir(parents=True, exist_ok=True)
(folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.75, "test_loss": 0.5, "device": "cpu",
                                                 "epochs": 1, "profile": PROFILE, "dataset": "imdb"}))
print("profile", PROFILE)
"""


@pytest.fixture
def lessons(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _write_notebook(folder / "01_good.ipynb", [WRITE_METRICS], parameters='NAME = "01_good"', published=50.0)
    _write_notebook(folder / "02_bad.ipynb", ["import os\nos.write(2, b'the kernel process says goodbye\\n')",
                                              "raise ValueError('broken on purpose')"], published=60.0)
    _write_notebook(folder / "03_good.ipynb", [WRITE_METRICS], parameters='NAME = "03_good"', published=70.0)
    _write_notebook(folder / "A_extra.ipynb", [WRITE_METRICS], parameters='NAME = "A_extra"')
    (folder / "scratch.ipynb").write_text("not a lesson: ignored")
    return folder


def main(lessons, *argv):
    """The runner on the `lessons` folder, quiet."""
    return runner.main(["--notebooks", str(lessons), "--quiet", *argv])


def test_failure_is_reported_others_run_and_exit_code_is_one(lessons, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(lessons, "--profile", "smoke", "--output-dir", str(out))
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["notebook"]: row for row in summary["notebooks"]}
    assert [row["lesson"] for row in summary["notebooks"]] == ["1", "2", "3", "A"]   # lessons, then appendices
    assert "broken on purpose" in rows["02_bad"]["error"] and "ValueError" in rows["02_bad"]["error"]
    assert rows["01_good"]["test_accuracy"] == 0.75 and rows["03_good"]["profile"] == "smoke"
    assert (out / "02_bad" / "02_bad.failed.ipynb").is_file()  # what ran is kept for debugging
    # and what the kernel process wrote below Python (off the console)
    assert "the kernel process says goodbye" in (out / "02_bad" / "02_bad.kernel.log").read_text()
    assert rows["02_bad"]["kernel_log"] == str(out / "02_bad" / "02_bad.kernel.log")
    assert not (out / "01_good" / "01_good.kernel.log").exists()
    assert not (out / "02_bad" / "02_bad.ipynb").exists()
    assert (out / "01_good" / "01_good.ipynb").is_file()
    table = (out / "summary.md").read_text()
    assert "**failed**" in table and "75.00%" in table and "50.00%" in table
    assert "| appendix | A | A_extra | 75.00% |  |" in table   # an appendix without a published figure
    assert "02_bad" in capsys.readouterr().err


def test_only_selects_lessons_and_appendices_and_rejects_unknown(lessons, tmp_path):
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "03,a", "--output-dir", str(out)) == 0
    assert [row["lesson"] for row in json.loads((out / "summary.json").read_text())["notebooks"]] == ["3", "A"]
    with pytest.raises(SystemExit, match="no notebook for lesson.*9.*available: 1, 2, 3, A"):
        main(lessons, "--only", "9", "--output-dir", str(out))
    with pytest.raises(SystemExit, match="lesson numbers and appendix letters"):
        main(lessons, "--only", "one", "--output-dir", str(out))


def test_a_new_notebook_needs_no_change_to_the_runner(lessons):
    _write_notebook(lessons / "07_new.ipynb", ["pass"], published=80.0)
    _write_notebook(lessons / "B_more.ipynb", ["pass"])
    _write_notebook(lessons / "8_one_digit.ipynb", ["pass"])   # not a course name (helpers.sync.NOTEBOOK_NAME)
    found = runner.discover(lessons)
    assert [lesson.key for lesson in found] == ["1", "2", "3", "7", "A", "B"]
    new = found[3]
    assert (new.stem, new.title, new.published_accuracy, new.path) == ("07_new", "07_new", 80.0,
                                                                        lessons / "07_new.ipynb")


def test_outside_a_checkout_the_working_folder_is_used_or_the_message_says_what_to_pass(lessons, tmp_path,
                                                                                      monkeypatch):
    from helpers import course

    monkeypatch.setattr(course, "checkout_root", lambda: None)
    monkeypatch.setattr(runner, "checkout_root", lambda: None)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(SystemExit, match="no course notebooks .* in .*empty: pass --notebooks DIR, or download") as said:
        runner.main(["--profile", "smoke"])
    assert f"download the notebooks from {course.course_url()} (its notebooks/ folder)" in str(said.value)
    monkeypatch.chdir(lessons)   # the notebooks in the working folder, no output folder given
    assert runner.main(["--profile", "smoke", "--only", "1", "--quiet"]) == 0
    assert (lessons / "results-smoke" / "01_good" / "metrics.json").is_file()   # the notebook's own default
    summary = json.loads((lessons / "results-smoke" / "summary.json").read_text())   # the runner's: same folder
    assert summary["git_commit"].startswith("not a checkout (installed helpers")
    with pytest.raises(SystemExit, match="not a checkout"):
        runner.update_readme("table")


def test_inplace_writes_outputs_into_the_notebook_without_injected_cell(lessons, tmp_path):
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "1", "--output-dir", str(out), "--inplace") == 0
    notebook = nbformat.read(lessons / "01_good.ipynb", as_version=4)
    assert not any("injected-parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)
    assert "profile smoke" in notebook.cells[1].outputs[0]["text"]
    recorded = notebook.metadata["papermill"]   # papermill's record, without this machine's paths
    assert "input_path" not in recorded and "output_path" not in recorded
    assert str(tmp_path) not in json.dumps(dict(notebook.metadata))


def test_a_notebook_that_writes_no_metrics_is_a_failure(lessons, tmp_path):
    _write_notebook(lessons / "03_good.ipynb", ["print('forgot the metrics')"])
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "3", "--output-dir", str(out)) == 1
    row = json.loads((out / "summary.json").read_text())["notebooks"][0]
    assert "wrote no fresh" in row["error"]


def test_summary_keeps_earlier_runs_and_readme_table_is_replaced(lessons, tmp_path):
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "1", "--output-dir", str(out)) == 0
    assert main(lessons, "--profile", "smoke", "--only", "3", "--output-dir", str(out)) == 0
    rows = json.loads((out / "summary.json").read_text())["notebooks"]
    assert [row["lesson"] for row in rows] == ["1", "3"]  # lesson 1 from the earlier run is still listed
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold table\n<!-- results:end -->\noutro\n")
    runner.update_readme(runner.summary_table(rows), readme)
    text = readme.read_text()
    assert "old table" not in text and "| lesson | 1 | 01_good | 75.00%" in text and text.endswith("outro\n")
    with pytest.raises(SystemExit, match="markers"):
        runner.update_readme("x", out / "summary.md")


def test_summary_only_runs_nothing_and_writes_the_summary_again(lessons, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "1,3", "--output-dir", str(out)) == 0
    before = {name: (out / name / "run.json").read_text() for name in ("01_good", "03_good")}
    (out / "summary.json").unlink()
    (out / "summary.md").write_text("stale")
    executed = []
    monkeypatch.setattr(runner, "execute", lambda *args, **kwargs: executed.append(args))
    assert main(lessons, "--profile", "smoke", "--summary-only", "--output-dir", str(out)) == 0
    assert executed == [] and {name: (out / name / "run.json").read_text() for name in before} == before
    rows = json.loads((out / "summary.json").read_text())["rows"]
    assert [(row["notebook"], row["dataset"], row["test_accuracy"]) for row in rows] == [
        ("01_good", "imdb", 0.75), ("03_good", "imdb", 0.75)]
    assert "| lesson | 3 | 03_good | 75.00%" in (out / "summary.md").read_text()


def test_summary_row_names_the_transformer_max_length_and_precision():
    row = {"lesson": "6", "notebook": "06_x", "published_accuracy": 91.58, "test_accuracy": 0.8771, "profile": "full",
           "device": "cpu (2 threads, x86_64)", "precision": "bf16", "epochs": 5, "minutes": 72.4,
           "git_commit": "a" * 40, "transformer": "all-MiniLM-L6-v2", "max_length": 512}
    line = runner.summary_table([row]).splitlines()[2]
    assert "06_x (all-MiniLM-L6-v2, max length 512)" in line
    assert "cpu (2 threads, x86_64), training in bf16" in line and "87.71%" in line
    row["device"] = "cpu AMD EPYC 9R14 (AVX512, avx512_bf16), 2 threads, bf16, torch 2.13.0"   # a record's hardware line
    assert "bf16, torch 2.13.0 |" in runner.summary_table([row]).splitlines()[2]   # precision not repeated


# What B_baselines' record call writes, in miniature: several results, no single test accuracy.
WRITE_ROWS = """
import json, pathlib
folder = pathlib.Path(RESULTS_DIR) / NAME
folder.mkdir(parents=True, exist_ok=True)
rows = [{"model": "tf-idf + lr", "dataset": "imdb", "test_accuracy": 0.89, "how": "C=4 on validation"},
        {"model": "tf-idf + lr", "dataset": "trec", "test_accuracy": 0.85, "how": "C=8 on validation"}]
(folder / "metrics.json").write_text(json.dumps({"test_accuracy": None, "test_loss": None, "device": "cpu",
                                                 "profile": PROFILE, "rows": rows}))
"""
WRITE_NO_TEST = """
import json, pathlib
folder = pathlib.Path(RESULTS_DIR) / NAME
folder.mkdir(parents=True, exist_ok=True)
(folder / "metrics.json").write_text(json.dumps({"test_accuracy": None, "test_loss": None, "device": "cpu",
                                                 "profile": PROFILE, "result": "served sentiment, p50 2.0 ms"}))
"""


def test_kinds_order_the_summary_and_several_results_give_a_row_each(lessons, tmp_path, capsys):
    _write_notebook(lessons / "B_base.ipynb", [WRITE_ROWS], parameters='NAME = "B_base"')
    nb = nbformat.read(lessons / "B_base.ipynb", as_version=4)
    nb.metadata["course"]["kind"] = "baseline"
    nbformat.write(nb, lessons / "B_base.ipynb")
    _write_notebook(lessons / "07_ship.ipynb", [WRITE_NO_TEST], parameters='NAME = "07_ship"')
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "1,7,A,B", "--output-dir", str(out)) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [(row["lesson"], row["kind"]) for row in summary["notebooks"]] == [
        ("1", "lesson"), ("7", "lesson"), ("B", "baseline"), ("A", "appendix")]
    flat = [(row["notebook"], row["kind"], row.get("dataset"), row.get("test_accuracy")) for row in summary["rows"]]
    assert flat == [("01_good", "lesson", "imdb", 0.75), ("07_ship", "lesson", None, None),
                    ("B_base", "baseline", "imdb", 0.89), ("B_base", "baseline", "trec", 0.85),
                    ("A_extra", "appendix", "imdb", 0.75)]
    table = (out / "summary.md").read_text()
    assert "| lesson | 7 | 07_ship | no test accuracy: served sentiment, p50 2.0 ms |" in table
    imdb, trec = [line for line in table.splitlines() if "B_base:" in line]
    assert "B_base: tf-idf + lr on imdb | 89.00% |  | C=4 on validation |" in imdb
    assert "B_base: tf-idf + lr on trec | 85.00% |" in trec
    minutes = [line.split("|")[10].strip() for line in (imdb, trec)]
    assert minutes[0] and not minutes[1]   # the notebook's minutes once


def test_an_unknown_kind_is_named(tmp_path):
    _write_notebook(tmp_path / "B_x.ipynb", ["pass"])
    nb = nbformat.read(tmp_path / "B_x.ipynb", as_version=4)
    nb.metadata["course"]["kind"] = "extra"
    nbformat.write(nb, tmp_path / "B_x.ipynb")
    with pytest.raises(ValueError, match="course.kind must be one of lesson, baseline, appendix, not 'extra'"):
        runner.read_lesson(tmp_path / "B_x.ipynb")


def test_collect_rows_fills_details_from_the_same_runs_metrics(tmp_path):
    lesson = runner.Lesson("6", "06_x", "t", 91.58, tmp_path / "06_x.ipynb")
    folder = tmp_path / "06_x"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"lesson": "6", "notebook": "06_x", "git_commit": "abc"}))
    (folder / "metrics.json").write_text(json.dumps({"git_commit": "abc", "transformer": "m", "max_length": 256}))
    assert runner.collect_rows(tmp_path, [lesson])[0]["max_length"] == 256
    (folder / "metrics.json").write_text(json.dumps({"git_commit": "other", "transformer": "m", "max_length": 99}))
    assert "max_length" not in runner.collect_rows(tmp_path, [lesson])[0]   # a later run's metrics are not mixed in


def test_collect_rows_gives_each_notebook_the_disk_its_latest_metrics_record(tmp_path):
    lessons = [runner.Lesson("6", "06_x", "t", 91.58, tmp_path / "06_x.ipynb"),
               runner.Lesson("C", "C_x", "t", None, tmp_path / "C_x.ipynb", kind="appendix"),
               runner.Lesson("1", "01_x", "t", None, tmp_path / "01_x.ipynb")]
    for stem, row, metrics in (("06_x", {"error": "boom"}, {"feature_bytes": 10_094_365_440}),   # a failed re-run
                               ("C_x", {}, {"cache_bytes": 8_630_000_000}),
                               ("01_x", {}, {"test_accuracy": 0.5})):
        (tmp_path / stem).mkdir()
        (tmp_path / stem / "run.json").write_text(json.dumps({"notebook": stem, **row}))
        (tmp_path / stem / "metrics.json").write_text(json.dumps(metrics))
    disk = {row["notebook"]: row["disk_bytes"] for row in runner.collect_rows(tmp_path, lessons)}
    assert disk == {"06_x": 10_094_365_440, "C_x": 8_630_000_000, "01_x": None}


def test_relative_folders_in_the_environment_become_absolute(tmp_path, monkeypatch):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    environ = {"SENTIMENT_DATA_DIR": "shared/data", "SENTIMENT_CACHE_DIR": "./cache",
               "SENTIMENT_TRANSFORMER": "model", "SENTIMENT_PROFILE": "smoke"}
    runner.absolute_environment_paths(environ)
    assert environ == {"SENTIMENT_DATA_DIR": str(tmp_path / "shared" / "data"),
                       "SENTIMENT_CACHE_DIR": str(tmp_path / "cache"),   # need not exist yet
                       "SENTIMENT_TRANSFORMER": str(tmp_path / "model"), "SENTIMENT_PROFILE": "smoke"}


def test_a_hub_name_and_empty_values_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    environ = {"SENTIMENT_TRANSFORMER": "bert-base-uncased", "SENTIMENT_DATA_DIR": ""}
    runner.absolute_environment_paths(environ)
    assert environ == {"SENTIMENT_TRANSFORMER": "bert-base-uncased", "SENTIMENT_DATA_DIR": ""}


def test_the_notebooks_get_the_data_folder_as_an_absolute_parameter(lessons, tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    _write_notebook(lessons / "01_good.ipynb", [WRITE_METRICS + """
import pathlib
assert pathlib.Path(DATA_DIR).is_absolute() and pathlib.Path(DATA_DIR).is_dir(), DATA_DIR
"""], parameters='NAME = "01_good"')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTIMENT_DATA_DIR", "data")   # relative to here, not to the notebooks' folder
    assert main(lessons, "--profile", "smoke", "--only", "1", "--output-dir", "out") == 0
    assert (tmp_path / "out" / "01_good" / "metrics.json").is_file()


SAYS_WHETHER_INTERACTIVE = """
import os
os.write(2, b"a line below Python, as libzmq writes one when a kernel exits\\n")
from helpers.progress import interactive
print("interactive:", interactive())
for step in range(3):
    print("a line the kernel prints", step)
"""


def test_console_shows_one_line_per_notebook_and_nothing_from_the_kernels(lessons, tmp_path, capfd):
    """Kernels over Unix sockets (no TCP warning), their output kept in the executed notebook only, and
    progress bars off inside them: papermill runs cells without a front end."""
    _write_notebook(lessons / "01_good.ipynb", [SAYS_WHETHER_INTERACTIVE, WRITE_METRICS], parameters='NAME = "01_good"')
    out = tmp_path / "out"
    assert runner.main(["--notebooks", str(lessons), "--profile", "smoke", "--only", "1,3", "--output-dir",
                        str(out)]) == 0
    captured = capfd.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 2, captured.err
    for number, (line, stem) in enumerate(zip(lines, ["01_good", "03_good"]), 1):
        assert re.fullmatch(rf"\[{number}/2\] {stem} \(smoke\) \.\.\. test accuracy 75\.00% in \d+\.\d min", line)
    assert "without encryption" not in captured.err + captured.out and "a line the kernel prints" not in captured.out
    assert "a line below Python" not in captured.err + captured.out
    executed = nbformat.read(out / "01_good" / "01_good.ipynb", as_version=4)
    assert any("interactive: False" in output.get("text", "") for cell in executed.cells for output in cell.outputs)


def test_log_output_streams_the_kernels_output(lessons, tmp_path, capfd):
    _write_notebook(lessons / "01_good.ipynb", [SAYS_WHETHER_INTERACTIVE, WRITE_METRICS], parameters='NAME = "01_good"')
    assert runner.main(["--notebooks", str(lessons), "--profile", "smoke", "--only", "1", "--log-output",
                        "--output-dir", str(tmp_path / "out")]) == 0
    captured = capfd.readouterr()
    assert "a line the kernel prints 2" in captured.out + captured.err
    with pytest.raises(SystemExit):
        runner.main(["--notebooks", str(lessons), "--quiet", "--log-output"])   # one or the other


def test_kernels_talk_over_unix_sockets_in_the_given_folder(tmp_path):
    config = runner.kernel_config(tmp_path)
    if runner.os.name == "nt":
        assert "KernelManager" not in config
    else:
        assert config.KernelManager.transport == "ipc" and config.KernelManager.ip == str(tmp_path / "kernel")


def test_result_line_gives_accuracy_going_further_and_errors():
    assert runner.result_line({"test_accuracy": 0.8, "minutes": 1.25}) == "test accuracy 80.00% in 1.2 min"
    assert runner.result_line({"test_accuracy": 0.8, "beyond": {"test_accuracy": 0.9}, "minutes": 2}) == (
        "test accuracy 80.00%, going further 90.00% in 2.0 min")
    assert runner.result_line({"error": "ValueError: bad\ntraceback", "minutes": 0.5}) == (
        "FAILED in 0.5 min: ValueError: bad")


# Two notebooks that can only finish together: each says it started, then waits for the other (a barrier).
MEET_THE_OTHER = """
import json, os, pathlib, time
meeting = pathlib.Path(MEETING)
(meeting / (NAME + ".started")).touch()
other = meeting / (OTHER + ".started")
deadline = time.monotonic() + 60
while not other.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
folder = pathlib.Path(RESULTS_DIR) / NAME
folder.mkdir(parents=True, exist_ok=True)
(folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.75, "test_loss": 0.5, "device": "cpu",
                                                 "profile": PROFILE, "dataset": "imdb", "met": other.exists(),
                                                 "threads": os.environ.get("SENTIMENT_THREADS")}))
"""


def test_jobs_run_notebooks_at_once_dividing_the_cores_and_still_report_a_failure(lessons, tmp_path, monkeypatch,
                                                                                 capfd):
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    for name, other in (("01_good", "03_good"), ("03_good", "01_good")):
        _write_notebook(lessons / f"{name}.ipynb", [MEET_THE_OTHER],
                        parameters=f'NAME = "{name}"\nOTHER = "{other}"\nMEETING = r"{meeting}"')
    monkeypatch.delenv("SENTIMENT_THREADS", raising=False)
    monkeypatch.setattr(runner, "core_count", lambda: 4)
    out = tmp_path / "out"
    assert runner.main(["--notebooks", str(lessons), "--profile", "smoke", "--only", "1,2,3", "--jobs", "2",
                        "--output-dir", str(out)]) == 1
    for name in ("01_good", "03_good"):   # each met the other while running: they ran at the same time
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["met"] is True and metrics["threads"] == "2"          # 4 cores // 2 jobs
    rows = {row["notebook"]: row for row in json.loads((out / "summary.json").read_text())["notebooks"]}
    assert rows["01_good"]["test_accuracy"] == 0.75 and "broken on purpose" in rows["02_bad"]["error"]
    err = capfd.readouterr().err
    finished = re.findall(r"^\[\d/3\] (\w+) \(smoke\) \.\.\. ", err, flags=re.MULTILINE)   # a line each
    assert sorted(finished) == ["01_good", "02_bad", "03_good"]
    assert err.splitlines()[-1] == "1 notebook(s) failed: 02_bad"
    assert "SENTIMENT_THREADS" not in runner.os.environ                    # given to the kernels only


def test_with_jobs_lesson_7_starts_only_when_lesson_3_has_finished(lessons, tmp_path, monkeypatch):
    _write_notebook(lessons / "07_serve.ipynb", [WRITE_METRICS], parameters='NAME = "07_serve"')
    events, lock = [], threading.Lock()

    def fake_execute(lesson, output_dir, inplace, log_output=False, parameters=None):
        with lock:
            events.append(("start", lesson.key))
        if lesson.key == "3":
            time.sleep(0.5)   # time for a wrongly started lesson 7 to show up in `events`
        with lock:
            events.append(("end", lesson.key))
        return {"lesson": lesson.key, "notebook": lesson.stem, "test_accuracy": 0.5, "minutes": 0.0}

    monkeypatch.setattr(runner, "execute", fake_execute)
    monkeypatch.setattr(runner, "core_count", lambda: 4)
    runner.main(["--notebooks", str(lessons), "--profile", "smoke", "--only", "1,3,7", "--jobs", "3", "--quiet",
                 "--output-dir", str(tmp_path / "out")])
    assert sorted(key for what, key in events if what == "end") == ["1", "3", "7"]
    assert events.index(("end", "3")) < events.index(("start", "7"))


def test_threads_are_shared_only_when_several_run_and_the_user_has_not_chosen():
    environ = {}
    with runner.shared_threads(3, environ, cores=16):
        assert environ == {"SENTIMENT_THREADS": "5"}
    assert environ == {}
    with runner.shared_threads(8, environ, cores=2):
        assert environ == {"SENTIMENT_THREADS": "1"}                       # at least one
    with runner.shared_threads(1, environ, cores=16):
        assert environ == {}                                               # one at a time: the kernels' default
    environ = {"SENTIMENT_THREADS": "3"}
    with runner.shared_threads(4, environ, cores=16):
        assert environ == {"SENTIMENT_THREADS": "3"}                       # the user's choice
    with pytest.raises(SystemExit):
        runner.main(["--jobs", "0"])


# A kernel that reports any SIGINT on its stderr (the runner's console), even while idle: ipykernel's hooks,
# which ignore SIGINT outside a message handler, are switched off.
REPORTS_SIGINT = """
import os, signal
signal.signal(signal.SIGINT, lambda *args: os.write(2, b"SIGINT reached the kernel\\n"))
kernel = get_ipython().kernel
kernel.pre_handler_hook = kernel.post_handler_hook = lambda: None
"""


def test_a_finished_kernel_is_not_interrupted_and_a_failing_notebooks_traceback_reaches_the_log(lessons, tmp_path,
                                                                                                capfd):
    """jupyter_client interrupts a kernel before shutting it down; in ipykernel that logs "KeyboardInterrupt caught
    in kernel." when the signal lands in a message handler. The runner's kernels are shut down without it."""
    _write_notebook(lessons / "01_good.ipynb", [REPORTS_SIGINT, WRITE_METRICS], parameters='NAME = "01_good"')
    _write_notebook(lessons / "02_bad.ipynb", [REPORTS_SIGINT, "def broken():\n    raise ValueError('broken on purpose')",
                                               "broken()"])
    assert runner.main(["--notebooks", str(lessons), "--profile", "smoke", "--only", "1,2", "--log-output",
                        "--output-dir", str(tmp_path / "out")]) == 1
    captured = capfd.readouterr()
    log = captured.out + captured.err
    assert "SIGINT reached the kernel" not in log and "KeyboardInterrupt" not in log
    assert "----> 1 broken()" in log and "ValueError: broken on purpose" in log and "\x1b[" not in log


def test_the_commit_column_shortens_commits_only():
    assert runner.short_commit("0123456789abcdef" * 2 + "01234567") == "`0123456789ab`"
    assert runner.short_commit("0123456789abcdef0123456789abcdef01234567-dirty") == (
        "`0123456789ab` (uncommitted changes)")
    assert runner.short_commit("not a checkout (installed helpers 0.1.0)") == "not a checkout (installed helpers 0.1.0)"
    assert runner.short_commit(None) == ""


def test_notebook_table_for_students_links_each_notebook_its_plot_and_splits_cpu_from_gpu_minutes(tmp_path):
    output = tmp_path / "results"
    for stem, plots in (("04_x", ["learning_curves.png"]), ("05_x", ["learning_curves.png", "confusion_matrix.png"]),
                        ("06_x", []), ("B_x", ["why_review.png"])):
        (output / stem).mkdir(parents=True)
        for name in plots:
            (output / stem / name).write_bytes(b"png")
    rows = [{"lesson": "4", "notebook": "04_x", "title": "CNN", "test_accuracy": 0.8802, "published_accuracy": 85.31,
             "beyond": {"test_accuracy": 0.88228}, "minutes": 3.89, "device": "cpu AMD EPYC, 2 threads, bf16"},
            {"lesson": "5", "notebook": "05_x", "title": "TREC", "test_accuracy": 0.834, "minutes": 0.31,
             "device": "cuda NVIDIA H100 (compute capability 9.0)"},
            {"lesson": "6", "notebook": "06_x", "title": "BERT", "error": "boom\nmore", "minutes": 1.0, "device": "cpu",
             "disk_bytes": 10_094_365_440},
            {"lesson": "7", "notebook": "07_x", "title": "Serving", "test_accuracy": None, "minutes": 0.9,
             "result": "p50 0.5 ms", "device": "cpu AMD EPYC, 2 threads, bf16"},
            {"lesson": "B", "notebook": "B_x", "title": "Baselines", "minutes": 1.6, "device": "cpu AMD EPYC, 2 threads, bf16",
             "rows": [
                {"model": "LR", "dataset": "imdb", "test_accuracy": 0.9025},
                {"model": "NB-SVM", "dataset": "imdb", "test_accuracy": 0.9126},
                {"model": "LR", "dataset": "trec", "test_accuracy": 0.886}]}]
    lines = runner.notebook_table(rows, output, tmp_path).splitlines()
    colab = "https://colab.research.google.com/github/"
    assert lines[2].startswith(f"| 4 | [04_x](notebooks/04_x.ipynb) ([Colab]({colab}")
    assert lines[2].endswith("| CNN | 88.02%, going further 88.23% (tutorial 85.31%) | 3.9 | – |  "
                             "| [plot](results/04_x/learning_curves.png) |")
    assert lines[3].endswith("| TREC | 83.40% | – | 0.3 |  | [plot](results/05_x/confusion_matrix.png) |")
    assert lines[4].endswith("| BERT | failed in its last run | 1.0 | – | 10.1 GB |  |")
    assert "| Serving | p50 0.5 ms | 0.9 |" in lines[5]
    assert "| Baselines | imdb 91.26% (NB-SVM), trec 88.60% (LR) | 1.6 |" in lines[6]
    assert lines[6].endswith("| [plot](results/B_x/why_review.png) |")
    assert lines[-1] == "–: not measured yet on that kind of device."


def test_readme_markers_choose_the_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("a\n<!-- notebooks:start -->\nold\n<!-- notebooks:end -->\nb\n<!-- results:start -->\n"
                      "old\n<!-- results:end -->\n")
    runner.update_readme("students\n", readme, markers="notebooks")
    assert readme.read_text() == ("a\n<!-- notebooks:start -->\nstudents\n<!-- notebooks:end -->\nb\n"
                                  "<!-- results:start -->\nold\n<!-- results:end -->\n")


def record_hardware(folder, name, cpu, precision="bf16"):
    """Make the recorded run of `name` in `folder` one on a CPU called `cpu` (its metrics.json and the runner's
    run.json, which copies them when the notebook ends)."""
    facts = {"precision": precision, "device": f"cpu {cpu}, 2 threads, {precision}, torch 2.13.0+cpu",
             "hardware": {"device": "cpu", "name": cpu, "cpu_capability": "AVX512", "threads": 2,
                          "precision": precision, "versions": {"torch": "2.13.0+cpu"}}}
    for file in ("metrics.json", "run.json"):
        path = folder / name / file
        path.write_text(json.dumps({**json.loads(path.read_text()), **facts}))


def test_parts_from_different_machines_are_refused_unless_the_table_says_so(lessons, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(lessons, "--profile", "smoke", "--only", "1,3,A", "--output-dir", str(out)) == 0
    record_hardware(out, "01_good", "AMD EPYC", precision="fp32")   # one machine, two precisions: one machine
    record_hardware(out, "03_good", "AMD EPYC")
    record_hardware(out, "A_extra", "AMD EPYC")
    assert main(lessons, "--profile", "smoke", "--summary-only", "--output-dir", str(out)) == 0
    assert "different machines" not in (out / "summary.md").read_text()

    record_hardware(out, "A_extra", "Intel Xeon")
    (out / "summary.md").write_text("the previous summary")
    capsys.readouterr()
    assert main(lessons, "--profile", "smoke", "--summary-only", "--output-dir", str(out)) == 2
    error = capsys.readouterr().err
    assert "different machines" in error and "cpu, Intel Xeon, AVX512, 2 threads, torch 2.13.0+cpu: notebooks A" in error
    assert (out / "summary.md").read_text() == "the previous summary"          # nothing written
    assert main(lessons, "--profile", "smoke", "--summary-only", "--mixed-machines", "--output-dir", str(out)) == 0
    note = (out / "summary.md").read_text().split("**These rows ran on different machines**")[1]
    assert "cpu, AMD EPYC, AVX512, 2 threads, torch 2.13.0+cpu: 1, 3" in note and "Intel Xeon" in note
    rows = runner.collect_rows(out, runner.discover(lessons))
    assert runner.machines_note(rows) in runner.notebook_table(rows, out, tmp_path)   # the students' table too


def test_a_gpu_beside_a_cpu_is_not_mixed_but_two_gpus_are():
    cpu = {"lesson": "2", "device": "cpu AMD EPYC, 2 threads, bf16", "precision": "bf16"}
    gpu = {"lesson": "2", "device": "cuda NVIDIA H100, bf16", "precision": "bf16"}
    assert runner.machine(cpu) == ("cpu", "cpu AMD EPYC, 2 threads")        # the precision left out
    assert runner.machine(gpu) == ("cuda", "cuda NVIDIA H100")
    assert runner.mixed_machines([cpu, gpu]) == {}
    other = {"lesson": "6", "device": "cuda Tesla T4, fp16", "precision": "fp16"}
    assert runner.mixed_machines([cpu, gpu, other]) == {"cuda NVIDIA H100": ["2"], "cuda Tesla T4": ["6"]}
    assert runner.mixed_machines([cpu, {**other, "error": "failed"}, gpu]) == {}
