"""The course's error analysis: avoidable bias and variance, and what to do about the larger one."""

from __future__ import annotations


def bias_variance_report(train_error: float, dev_error: float, baseline_error: float, baseline_note: str) -> dict:
    """avoidable bias = train error - baseline (human-level, a proxy for Bayes error); variance = dev error -
    train error. Recommends the course's fixes for whichever is larger."""
    bias = train_error - baseline_error
    variance = dev_error - train_error
    if bias >= variance:
        focus = "avoidable bias"
        advice = "train a bigger network, train longer or with a better optimizer, or try another architecture"
    else:
        focus = "variance"
        advice = "get more data (or more augmentation), add regularization (L2, dropout), or try another architecture"
    text = (f"train error {train_error:.4f}, dev error {dev_error:.4f}, baseline {baseline_error:.4f} "
            f"({baseline_note}): avoidable bias {bias:.4f}, variance {variance:.4f}. "
            f"The larger is {focus}: {advice}.")
    return {"train_error": train_error, "dev_error": dev_error, "baseline_error": baseline_error,
            "avoidable_bias": bias, "variance": variance, "focus": focus, "advice": advice, "text": text}
