"""helpers.progress: bars only for a person watching (a front end's notebook cell or a terminal)."""
import io

from helpers import progress as progress_module
from helpers.progress import interactive, progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_outside_a_kernel_a_terminal_is_interactive_and_a_pipe_or_file_is_not(monkeypatch):
    monkeypatch.setattr(progress_module, "_kernel_request_allows_input", lambda: None)
    assert interactive(Terminal()) and not interactive(io.StringIO())


def test_in_a_kernel_the_front_ends_request_decides(monkeypatch):
    for allows, expected in ((True, True), (False, False)):     # JupyterLab / Colab send True; papermill, nbval False
        monkeypatch.setattr(progress_module, "_kernel_request_allows_input", lambda allows=allows: allows)
        assert interactive(io.StringIO()) is expected
        assert interactive(Terminal()) is expected


def test_the_environment_is_not_read(monkeypatch):
    """A library module takes no orders from environment variables (only the course layer reads them):
    the old SENTIMENT_PROGRESS override is gone, the kernel's request and the stream alone decide."""
    monkeypatch.setattr(progress_module, "_kernel_request_allows_input", lambda: None)
    monkeypatch.setenv("SENTIMENT_PROGRESS", "1")
    assert not interactive(io.StringIO())
    monkeypatch.setenv("SENTIMENT_PROGRESS", "0")
    assert interactive(Terminal())


def test_a_batch_run_gets_a_silent_bar_with_the_same_interface(monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "interactive", lambda stream=None: False)
    assert list(progress(range(3), "counting")) == [0, 1, 2]
    bar = progress(total=5, desc="by hand")
    bar.update(5)
    bar.close()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress_module, "interactive", lambda stream=None: True)
    list(progress(range(3), "counting", mininterval=0))
    assert "counting" in capsys.readouterr().err
