"""Which test images the Explainer explains (components/pneumonia/explainer.select_cases)."""

from __future__ import annotations

import pandas as pd

from components.pneumonia.explainer import scored_predictions, select_cases


def three_class_predictions(tmp_path) -> pd.DataFrame:
    rows = [
        # path, label, NORMAL, BACTERIA, VIRUS, predicted
        ("n_confident.png", "NORMAL", 0.90, 0.05, 0.05, "NORMAL"),
        ("n_wrong.png", "NORMAL", 0.20, 0.70, 0.10, "BACTERIA"),
        ("b_right.png", "BACTERIA", 0.10, 0.80, 0.10, "BACTERIA"),
        ("v_missed.png", "VIRUS", 0.60, 0.10, 0.30, "NORMAL"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["path", "label", "score_NORMAL", "score_BACTERIA", "score_VIRUS", "predicted"],
    )
    frame["split"] = "test"
    frame.to_csv(tmp_path / "predictions.csv", index=False)
    return scored_predictions(tmp_path)


def test_three_class_cases_follow_predicted_against_true_class(tmp_path):
    cases = select_cases(three_class_predictions(tmp_path), threshold=0.5, per_outcome=2)
    outcome = dict(zip(cases["path"], cases["outcome"]))
    assert outcome == {
        "n_confident.png": "true_negative",  # max softmax 0.9 is NORMAL's, not a positive
        "n_wrong.png": "false_positive",
        "b_right.png": "true_positive",
        "v_missed.png": "false_negative",
    }
