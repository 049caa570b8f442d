"""The training report's advice follows the course's rule (issue 18): avoidable bias = train error - human level,
variance = dev error - train error, advice on the larger; a dev error at or below human level gets no advice, and
negative gaps are no problem. Checked on hand-made cases and against a brute-force table."""

import itertools

import pytest

from edgepipe.export.train.report import ADVICE, BIAS, HUMAN_LEVEL, VARIANCE, bias_variance_report


def reference_focus(train: float, dev: float, human: float) -> str:
    """Brute force, another way round: the reducible dev error (dev - human) split into the part the training set
    already shows (train above human, at most all of it) and the rest, which only the dev set shows."""
    reducible = round(dev - human, 12)  # the values are given to a few decimals: rounding leaves exact ties
    if reducible <= 0:
        return HUMAN_LEVEL
    shown_on_train = min(max(round(train - human, 12), 0.0), reducible)
    return BIAS if shown_on_train >= round(reducible - shown_on_train, 12) else VARIANCE


@pytest.mark.parametrize(
    ("train", "dev", "human", "focus"),
    [
        (0.15, 0.16, 0.01, BIAS),  # the course's example: 14% bias, 1% variance
        (0.01, 0.11, 0.01, VARIANCE),
        (0.08, 0.10, 0.01, BIAS),
        (0.075, 0.10, 0.075, VARIANCE),  # at human level on train: variance only
        (0.0016, 0.0, 0.005, HUMAN_LEVEL),  # the lenet5 run of issue 18: both gaps negative, dev error 0
        (0.02, 0.005, 0.005, HUMAN_LEVEL),  # dev error exactly at human level
        (0.001, 0.03, 0.005, VARIANCE),  # train below human: the whole gap is variance
        (0.06, 0.04, 0.01, BIAS),  # dev below train: the whole gap is bias
        (0.03, 0.05, 0.01, BIAS),  # a tie: fit the training set first
    ],
)
def test_hand_made_cases(train, dev, human, focus):
    r = bias_variance_report(train, dev, human, "human level")
    assert r["focus"] == focus and r["advice"] == ADVICE[focus]
    assert r["avoidable_bias"] == pytest.approx(train - human) and r["variance"] == pytest.approx(dev - train)


def test_every_case_of_a_grid_against_the_brute_force_table():
    values = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]  # exact ties and crossings included
    table = {(t, d, h): reference_focus(t, d, h) for t, d, h in itertools.product(values, repeat=3)}
    assert set(table.values()) == {BIAS, VARIANCE, HUMAN_LEVEL}
    for (t, d, h), focus in table.items():
        assert bias_variance_report(t, d, h, "human")["focus"] == focus, (t, d, h)


@pytest.mark.parametrize(("train", "dev"), [(0.0016, 0.0), (0.0, 0.005), (0.004, 0.003)])
def test_at_human_level_the_text_says_so_and_asks_for_no_data(train, dev):
    text = bias_variance_report(train, dev, 0.005, "a careful reader")["text"]
    assert "at human level" in text and "more data" not in text and "The larger is" not in text
    assert text.startswith(f"train error {train:.4f}, dev error {dev:.4f}, baseline 0.0050 (a careful reader)")


def test_above_human_level_the_text_names_the_larger_and_its_advice():
    text = bias_variance_report(0.01, 0.11, 0.01, "human")["text"]
    assert text.endswith(f"avoidable bias 0.0000, variance 0.1000. The larger is variance: {ADVICE[VARIANCE]}.")
