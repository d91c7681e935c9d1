"""helpers.diagrams: every diagram renders cleanly, and what it draws matches what it claims."""
import io
import math
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from helpers import diagrams


def tagged(fig, gid):
    """Every patch, text and line in the figure whose gid is `gid`."""
    found = []
    for ax in fig.axes:
        found += [a for a in [*ax.patches, *ax.texts, *ax.lines] if a.get_gid() == gid]
    found += [t for t in fig.texts if t.get_gid() == gid]
    return found


@pytest.mark.parametrize("name", list(diagrams.DIAGRAMS))
def test_every_diagram_renders_to_png_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = diagrams.DIAGRAMS[name]()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=60)
    assert buffer.getvalue().startswith(b"\x89PNG")
    assert fig.__doc__ or diagrams.DIAGRAMS[name].__doc__


def test_lessons_cover_the_course():
    named = [name for names in diagrams.LESSONS.values() for name in names]
    assert sorted(named) == sorted(diagrams.DIAGRAMS), "each diagram is used by exactly one notebook"
    first_five = [stem for stem in diagrams.LESSONS if stem[:2] in {"01", "02", "03", "04", "05"}]
    assert sum(len(diagrams.LESSONS[stem]) for stem in first_five) >= 16
    for prefix in ("06", "07", "A_", "B_", "C_"):
        assert any(stem.startswith(prefix) and diagrams.LESSONS[stem] for stem in diagrams.LESSONS)


def test_padded_batch_shades_one_cell_per_missing_token():
    reviews = [["a", "b", "c"], ["d"], ["e", "f", "g", "h", "i"]]
    fig = diagrams.padded_batch(reviews)
    longest = max(map(len, reviews))
    assert len(tagged(fig, "pad")) == sum(longest - len(r) for r in reviews) == 6
    assert len(tagged(fig, "token")) == 9
    assert [int(t.get_text()) for t in tagged(fig, "length")] == [3, 1, 5]


def test_packing_batch_sizes_are_the_running_reviews_per_step():
    reviews = [["a"] * 4, ["b"] * 2, ["c"] * 6, ["d"]]
    fig = diagrams.packing(reviews)
    drawn = [int(t.get_text()) for t in tagged(fig, "batch_sizes")]
    lengths = [4, 2, 6, 1]
    expected = [sum(1 for n in lengths if n > t) for t in range(6)]
    assert drawn == expected == [4, 3, 2, 2, 1, 1]
    assert len(tagged(fig, "packed_token")) == sum(lengths)
    assert len(tagged(fig, "pad_read")) == 4 * 6 - sum(lengths)


def test_softmax_bars_are_numpy_softmax_of_the_logits():
    logits = [2.0, -1.0, 0.5, 0.0, 3.0, 1.0]
    fig = diagrams.softmax(logits)
    heights = np.array([bar.get_height() for bar in tagged(fig, "probability")])
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    assert heights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose([bar.get_height() for bar in tagged(fig, "logit")], logits)


def test_softmax_refuses_mismatched_classes():
    with pytest.raises(ValueError, match="one logit per class"):
        diagrams.softmax([1.0, 2.0], classes=diagrams.TREC_CLASSES)


def test_cross_entropy_marks_minus_log_p_of_the_true_class():
    logits = [0.1, 0.2, 0.3, 2.0, -1.0, 0.0]
    fig = diagrams.cross_entropy(logits, target="LOC")
    p = np.exp(logits) / np.exp(logits).sum()
    (bar,) = tagged(fig, "true_class")
    assert bar.get_height() == pytest.approx(p[4])
    (point,) = tagged(fig, "loss_point")
    assert point.get_ydata()[0] == pytest.approx(-math.log(p[4]))
    with pytest.raises(ValueError, match="not one of the classes"):
        diagrams.cross_entropy(logits, target="CITY")


def test_conv_filters_draw_t_minus_k_plus_one_windows_per_width():
    tokens = "a movie i would not watch again at all".split()
    fig = diagrams.conv_filters(tokens, filter_sizes=(2, 3, 5))
    for k in (2, 3, 5):
        assert len(tagged(fig, f"feature_{k}")) == len(tokens) - k + 1
        assert len(tagged(fig, f"window_{k}")) == 1
    with pytest.raises(ValueError, match="fewer than the widest filter"):
        diagrams.conv_filters(["too", "short"])


def test_max_pooling_keeps_each_maps_maximum():
    maps = [[[0.1, 0.9, 0.3]], [[0.5, 0.2]]]
    fig = diagrams.max_pooling(maps, filter_sizes=(2, 3), dropped=())
    pooled = [p for p in tagged(fig, "pooled")]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts
             if any(abs(t.get_position()[1] - (p.get_y() + p.get_height() / 2)) < 1e-9
                    and abs(t.get_position()[0] - (p.get_x() + p.get_width() / 2)) < 1e-9 for p in pooled)]
    assert texts == ["0.9", "0.5"]


def test_min_length_padding_pads_to_the_widest_filter():
    fig = diagrams.min_length_padding(["bad"], filter_sizes=(2, 4))
    assert len(tagged(fig, "pad")) == 3


def test_bigrams_drawn_are_the_adjacent_pairs():
    tokens = ["not", "good", "at", "all", "not", "good"]
    fig = diagrams.bigrams(tokens)
    drawn = [t.get_text() for t in tagged(fig, "bigram_text")]
    assert drawn == [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]
    assert len(tagged(fig, "token")) == len(tokens)


def test_bag_of_ngrams_averages_words_and_distinct_bigrams():
    fig = diagrams.bag_of_ngrams(["not", "good", "not", "good"])
    assert [t.get_text() for ax in fig.axes for t in ax.texts
            if t.get_text() in {"not good", "good not"}] == ["not good", "good not"]
    assert len(tagged(fig, "ngram")) == 4 + 2


def test_length_mask_counts_and_divisors():
    reviews = [["a", "b", "c"], ["d"]]
    fig = diagrams.length_mask(reviews)
    assert len(tagged(fig, "mask_false")) == len(tagged(fig, "pad")) == 2
    assert len(tagged(fig, "mask_true")) == 4
    assert [t.get_text().split()[1] for t in tagged(fig, "divisor")] == ["3", "1"]


def test_nbsvm_bars_are_the_log_count_ratio():
    documents = [["good"], ["bad"], ["good", "fun"], ["bad", "fun"], ["fun"]]
    positive = [True, False, True, False, True]
    fig = diagrams.nbsvm(documents, positive, alpha=1.0)
    terms = ["good", "bad", "fun"]
    x = np.array([[term in d for term in terms] for d in documents], dtype=float)
    y = np.array(positive)
    p, q = 1 + x[y].sum(0), 1 + x[~y].sum(0)
    expected = np.log((p / p.sum()) / (q / q.sum()))
    np.testing.assert_allclose([bar.get_width() for bar in tagged(fig, "ratio")], expected)


def test_warmup_schedule_peaks_then_decays_to_zero():
    lr = diagrams.warmup_linear_schedule(100, 0.1, 1.0)
    assert lr[0] == 0 and lr.argmax() == 10 and lr.max() == pytest.approx(1.0)
    assert lr[-1] == pytest.approx(1 / 90)
    fig = diagrams.fine_tuning_layers(n_layers=6, train_layers=2)
    assert len(tagged(fig, "frozen_layer")) == 1 + 4
    assert len(tagged(fig, "trained_layer")) == 2 + 1


def test_serving_path_shows_every_bundle_file():
    fig = diagrams.serving_path()
    names = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"model.onnx", "vocab.json", "tokenizer.json", "meta.json"} <= names
    assert len(tagged(fig, "bundle_file")) == 4


def test_dollar_in_a_token_is_drawn_literally():
    fig = diagrams.rnn_unrolled(["$5", "ticket", "$"])
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def test_cli_writes_one_png_per_diagram(tmp_path):
    result = subprocess.run([sys.executable, "-m", "helpers.diagrams", "--out", str(tmp_path)],
                            capture_output=True, text=True, check=True)
    written = sorted(path.stem for path in tmp_path.glob("*.png"))
    assert written == sorted(diagrams.DIAGRAMS)
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in tmp_path.glob("*.png"))
    assert len(result.stdout.split()) == len(diagrams.DIAGRAMS)


def test_cli_names_an_unknown_diagram(tmp_path):
    result = subprocess.run([sys.executable, "-m", "helpers.diagrams", "--out", str(tmp_path), "nope"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown diagram" in result.stderr and "Traceback" not in result.stderr


def test_import_does_not_import_torch():
    code = "import sys, helpers.diagrams; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_diagram_displays_as_a_png_without_pyplots_inline_backend():
    """A notebook cell ending in a diagram call shows the picture, not '<Figure size ...>' (the figures are built
    without pyplot, so `%matplotlib inline` cannot be relied on to register a formatter for them)."""
    from IPython.core.interactiveshell import InteractiveShell

    formats, _ = InteractiveShell.instance().display_formatter.format(diagrams.DIAGRAMS["rnn_unrolled"]())
    assert formats["image/png"].startswith(b"\x89PNG")
