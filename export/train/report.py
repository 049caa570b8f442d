"""The course's error analysis: avoidable bias and variance, and what to do about the larger one."""

from __future__ import annotations

# What the report's focus can be, and the course's advice for each.
BIAS, VARIANCE, HUMAN_LEVEL = "avoidable bias", "variance", "human level"
ADVICE = {
    BIAS: "train a bigger network, train longer or with a better optimizer, or try another architecture",
    VARIANCE: "get more data (or more augmentation), add regularization (L2, dropout), or try another architecture",
    HUMAN_LEVEL: "no avoidable bias or variance is left to reduce; judge the model on the test split, or find a "
                 "lower baseline",
}
EQUAL = 1e-9  # errors closer than this are equal (a tie, or at the baseline), whatever float rounding did


def focus_of(train_error: float, dev_error: float, baseline_error: float) -> str:
    """The course's rule: avoidable bias = train error - baseline (human-level, a proxy for Bayes error), variance =
    dev error - train error; work on the larger (on a tie, bias: fit the training set first). A dev error at or
    below the baseline is at human level: nothing to advise. A negative gap is no problem, so the other one is the
    larger: train error below the baseline leaves variance, dev error below train error leaves bias."""
    if dev_error <= baseline_error + EQUAL:
        return HUMAN_LEVEL
    return BIAS if train_error - baseline_error >= dev_error - train_error - EQUAL else VARIANCE


def bias_variance_report(train_error: float, dev_error: float, baseline_error: float, baseline_note: str) -> dict:
    """The errors, both gaps, the focus (BIAS, VARIANCE or HUMAN_LEVEL), its advice and the report's text."""
    bias = train_error - baseline_error
    variance = dev_error - train_error
    focus = focus_of(train_error, dev_error, baseline_error)
    advice = ADVICE[focus]
    numbers = (f"train error {train_error:.4f}, dev error {dev_error:.4f}, baseline {baseline_error:.4f} "
               f"({baseline_note}): avoidable bias {bias:.4f}, variance {variance:.4f}.")
    if focus == HUMAN_LEVEL:
        verdict = f"The dev error is at or below the baseline, at human level: {advice}."
    else:
        verdict = f"The larger is {focus}: {advice}."
    text = f"{numbers} {verdict}"
    return {"train_error": train_error, "dev_error": dev_error, "baseline_error": baseline_error,
            "avoidable_bias": bias, "variance": variance, "focus": focus, "advice": advice, "text": text}
