"""helpers.plots: learning curves with a chance line and honest axes, and describe_plot's words for them."""
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from helpers.plots import FLAT_LOSS, MIN_SPAN, chance_level, describe_plot, plot_history  # noqa: E402


def row(epoch, train_loss, train_accuracy, valid_loss, valid_accuracy):
    return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
            "valid_loss": valid_loss, "valid_accuracy": valid_accuracy}


# Lesson 1's shape: validation loss 0.6946 -> 0.6941 at chance, a 0.2-point train/validation gap in epoch 1.
AT_CHANCE = [row(1, 0.6940, 0.5023, 0.6946, 0.5043), row(2, 0.6932, 0.5010, 0.6944, 0.5056),
             row(3, 0.6931, 0.5127, 0.6943, 0.5068), row(4, 0.6930, 0.5128, 0.6942, 0.5111),
             row(5, 0.6930, 0.5131, 0.6941, 0.5085)]
# Lesson 2's shape: learning, still falling by more than the threshold in the last epoch.
LEARNING = [row(1, 0.652, 0.614, 0.561, 0.743), row(2, 0.652, 0.616, 0.623, 0.679),
            row(3, 0.568, 0.710, 0.571, 0.749), row(4, 0.482, 0.771, 0.368, 0.839),
            row(5, 0.343, 0.858, 0.354, 0.846)]


def test_a_change_below_the_threshold_is_flat_not_still_falling():
    text = describe_plot(AT_CHANCE)
    assert "flat" in text and "-0.0005" in text and "still falling" not in text and "might help" not in text
    # the same curve judged with a threshold below its change is a fall, not flat
    strict = describe_plot(AT_CHANCE, flat=0.0001)
    assert "flat" not in strict.split(".")[0] and "Validation loss was lowest at the last epoch" in strict


def test_a_fall_above_the_threshold_says_more_epochs_might_help():
    text = describe_plot(LEARNING)
    assert "fell by 0.0140 in the last epoch, so more epochs might help" in text
    assert "flat" not in text


def test_a_last_step_below_the_threshold_has_flattened_out():
    history = LEARNING[:4] + [row(5, 0.343, 0.858, 0.366, 0.840)]     # 0.368 -> 0.366
    assert "less than 0.01: it has flattened out" in describe_plot(history)


def test_after_the_kept_epoch_a_small_rise_is_a_plateau_and_a_large_one_with_falling_train_loss_overfits():
    plateau = LEARNING + [row(6, 0.300, 0.88, 0.354 + FLAT_LOSS / 2, 0.84)]
    assert "flat, a plateau" in describe_plot(plateau)
    overfit = LEARNING + [row(6, 0.250, 0.90, 0.420, 0.83)]
    assert "starts to overfit" in describe_plot(overfit)


def test_an_epoch_one_gap_within_the_noise_is_not_explained_and_a_large_one_is():
    assert "averaged over the epoch" not in describe_plot(AT_CHANCE)                # 0.2 points
    assert "12.9 points above training accuracy" in describe_plot(LEARNING)       # 74.3% against 61.4%
    assert "averaged over the epoch" in describe_plot(AT_CHANCE, noise=0.001)


def test_chance_is_compared_when_the_number_of_classes_is_given():
    assert "ln 2 = 0.693" in describe_plot(AT_CHANCE, classes=2)
    assert "no better than guessing" in describe_plot(AT_CHANCE, classes=2)
    assert "0.339 below it" in describe_plot(LEARNING, classes=2)
    assert "ln 2" not in describe_plot(AT_CHANCE)
    one = describe_plot(AT_CHANCE[:1], classes=2)
    assert one.startswith("One epoch only") and "no better than guessing" in one
    assert chance_level(6) == pytest.approx({"loss": math.log(6), "accuracy": 1 / 6})


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="history is empty"):
        describe_plot([])
    with pytest.raises(ValueError, match="flat must be above 0"):
        describe_plot(AT_CHANCE, flat=0)
    with pytest.raises(ValueError, match="at least 2 classes"):
        chance_level(1)
    with pytest.raises(ValueError, match="history is empty"):
        plot_history([])


def test_the_plot_has_a_chance_line_a_labelled_kept_epoch_and_axes_that_do_not_magnify_noise(tmp_path):
    fig = plot_history(AT_CHANCE, "at chance", path=tmp_path / "curves.png", classes=2)
    assert (tmp_path / "curves.png").stat().st_size > 0
    for ax, metric in zip(fig.axes, ("loss", "accuracy")):
        low, high = ax.get_ylim()
        assert high - low >= MIN_SPAN[metric]                  # 0.0005 of change cannot fill the panel
        level = chance_level(2)[metric]
        assert low < level < high
        lines = {line.get_label(): line for line in ax.get_lines()}
        chance = [line for label, line in lines.items() if label.startswith("chance")]
        assert len(chance) == 1 and np.allclose(chance[0].get_ydata(), level)
        kept = [label for label in lines if label.startswith("kept")]
        assert kept == ["kept: epoch 5 (lowest valid loss)"]
        assert {text.get_text() for text in ax.get_legend().get_texts()} >= {"train", "valid", *kept}
    fig.clf()


def test_without_classes_there_is_no_chance_line_and_large_changes_keep_their_own_range():
    fig = plot_history(LEARNING, "learning")
    loss_axis = fig.axes[0]
    assert not any(line.get_label().startswith("chance") for line in loss_axis.get_lines())
    low, high = loss_axis.get_ylim()
    assert low < 0.343 and high > 0.652 and high - low < 0.4    # data span 0.309 plus a margin
    fig.clf()
