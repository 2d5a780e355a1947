"""--task multilabel's pure parts, without training: NIH label rules, per-finding metrics
against scikit-learn, the per-finding loss and weights, a finding's view of the model,
NIH's split lists and the multi-label phantoms."""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn import metrics as skm

from components.clinical_metrics import patient_draw_weights
from components.errors import DataError
from components.multilabel_metrics import (
    MIN_PATIENTS,
    MIN_POSITIVES,
    choose_finding_thresholds,
    multilabel_split_metrics,
    patient_average_precision_ci,
)
from components.pneumonia import example_gen
from datasets.nih_chestxray14.findings import (
    finding_string,
    multi_hot,
    multilabel_findings,
    parse_lesion_masks,
)
from datasets.synthetic_cxr.phantom import (
    MULTILABEL_FINDINGS,
    make_multilabel_phantom,
    make_phantom,
)
from models.losses import FindingWeightedCrossentropy, make_loss
from models.training import finding_weights

# --- label rules -------------------------------------------------------------------


def test_label_strings_become_sorted_nih_findings():
    assert multilabel_findings("Mass|Effusion") == ("Effusion", "Mass")
    assert multilabel_findings(" effusion | MASS |Mass") == ("Effusion", "Mass")
    assert multilabel_findings("Pleural_Thickening") == ("Pleural_Thickening",)
    assert multilabel_findings("No Finding") == ()
    assert finding_string(()) == "No Finding"
    assert finding_string(("Mass", "Effusion")) == "Effusion|Mass"


@pytest.mark.parametrize(
    "label, named",
    [("Effusion|Pneumonitis", "'Pneumonitis'"), ("Mass||Effusion", "an empty finding")],
)
def test_an_unknown_finding_is_refused_in_one_line(label, named):
    with pytest.raises(DataError) as refused:
        multilabel_findings(label)
    message = str(refused.value)
    assert "\n" not in message and named in message and label in message


def test_no_finding_beside_a_finding_is_refused():
    with pytest.raises(DataError, match="No Finding beside a finding"):
        multilabel_findings("No Finding|Mass")


def test_multi_hot_rows_over_the_model_findings():
    rows = multi_hot(["Effusion|Mass", "No Finding", "Hernia", ""], ["Effusion", "Mass"])
    # Hernia has no unit here: absent; an empty label (unlabelled image): -1.
    np.testing.assert_array_equal(rows, [[1, 1], [0, 0], [0, 0], [-1, -1]])


def test_lesion_mask_cells():
    assert parse_lesion_masks("Nodule:m/a.png|Effusion:m/b.png") == {
        "Nodule": "m/a.png",
        "Effusion": "m/b.png",
    }
    assert parse_lesion_masks("") == {}
    with pytest.raises(DataError):
        parse_lesion_masks("Nodule")


def write_csv(tmp_path, labels: list[str]) -> tuple:
    for i in range(len(labels)):
        pixels = np.random.default_rng(i).integers(0, 255, (16, 16), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"0000000{i}_000.png")
    frame = pd.DataFrame(
        {"image_path": [f"0000000{i}_000.png" for i in range(len(labels))], "label": labels}
    )
    frame.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "labels.csv"


def test_the_csv_reader_keeps_every_row_with_its_findings(tmp_path):
    csv = write_csv(tmp_path, ["Mass|Effusion", "No Finding", "Hernia", ""])
    frame, skipped, dropped = example_gen.read_multilabel_csv(csv)
    assert frame["label"].tolist() == ["Effusion|Mass", "No Finding", "Hernia"]
    assert frame["patient_id"].tolist() == ["00000000", "00000001", "00000002"]
    assert dropped["missing_values"] == 1 and skipped[0]["line"] == 5


def test_the_csv_reader_names_the_line_of_an_unknown_finding(tmp_path):
    csv = write_csv(tmp_path, ["No Finding", "Mass|Cardiomegally"])
    with pytest.raises(DataError, match=r"line 3: unknown finding 'Cardiomegally'"):
        example_gen.read_multilabel_csv(csv)


def test_nih_split_lists_decide_test_and_val_comes_from_train_val(tmp_path):
    names = [f"{p:08d}_{k:03d}.png" for p in range(40) for k in range(2)]
    frame = pd.DataFrame(
        {
            "path": [f"/data/{n}" for n in names],
            "label": ["No Finding" if i % 3 else "Mass" for i in range(len(names))],
            "patient_id": [n[:8] for n in names],
        }
    )
    (tmp_path / "test_list.txt").write_text("\n".join(names[:20]) + "\n")
    (tmp_path / "train_val_list.txt").write_text("\n".join(names[20:78]) + "\n")
    split, skipped = example_gen.assign_split_lists(frame, tmp_path, 0.2, seed=1)
    assert (
        split.set_index("path").loc[[f"/data/{n}" for n in names[:20]], "split"] == "test"
    ).all()
    assert set(split["split"]) == {"train", "val", "test"}
    assert [s["path"] for s in skipped] == [f"/data/{n}" for n in names[78:]]
    by_patient = split.groupby("patient_id")["split"].nunique()
    assert (by_patient == 1).all()


# --- per-finding metrics against scikit-learn -----------------------------------------


@pytest.fixture(scope="module")
def scored():
    """Three findings on 90 images of 45 patients; the third has 3 positives only."""
    rng = np.random.default_rng(4)
    labels = (rng.random((90, 3)) < [0.4, 0.2, 0.0]).astype(int)
    labels[[5, 17, 60], 2] = 1
    scores = np.clip(0.3 * labels + rng.random((90, 3)), 0, 1).round(2)  # ties included
    return labels, scores, np.repeat(np.arange(45), 2)


def test_per_finding_figures_are_scikit_learns(scored):
    labels, scores, patients = scored
    findings = ["Effusion", "Mass", "Hernia"]
    thresholds = {"Effusion": 0.6, "Mass": 0.55, "Hernia": 0.5}
    result = multilabel_split_metrics(labels, scores, thresholds, findings, patients, 200, 1)
    for j, name in enumerate(findings[:2]):
        m = result["per_finding"][name]
        y, s = labels[:, j], scores[:, j]
        flagged = s >= thresholds[name]
        assert m["auc"] == pytest.approx(skm.roc_auc_score(y, s))
        assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, s))
        assert m["sensitivity"] == pytest.approx(skm.recall_score(y, flagged))
        assert m["specificity"] == pytest.approx(skm.recall_score(1 - y, ~flagged))
        assert m["n_positive"] == y.sum() and m["threshold"] == thresholds[name]
        for key in ("auc", "average_precision", "sensitivity", "specificity"):
            low, high = m[f"{key}_ci95"]
            assert low <= m[key] <= high
    assert result["macro_auc"] == pytest.approx(
        skm.roc_auc_score(labels[:, :2], scores[:, :2], average="macro")
    )
    assert result["micro_auc"] == pytest.approx(
        skm.roc_auc_score(labels[:, :2], scores[:, :2], average="micro")
    )


def test_a_finding_with_too_few_positives_gets_a_reason_not_a_number(scored):
    labels, scores, patients = scored
    result = multilabel_split_metrics(
        labels, scores, {"A": 0.5, "B": 0.5, "C": 0.5}, ["A", "B", "C"], patients, 50, 1
    )
    rare = result["per_finding"]["C"]
    assert rare["evaluable"] is False and rare["n_positive"] == 3
    assert rare["reason"] == f"too few positives (3 < {MIN_POSITIVES})"
    assert not {"auc", "average_precision", "sensitivity", "specificity"} & set(rare)
    assert result["evaluable_findings"] == ["A", "B"]


def test_a_finding_whose_positives_are_few_patients_gets_a_reason(scored):
    labels, scores, _ = scored
    patients = np.where(labels[:, 0] == 1, "one", np.arange(90).astype(str))
    result = multilabel_split_metrics(labels, scores, {"A": 0.5}, ["A"], patients, 50, 1)
    only = result["per_finding"]["A"]
    assert only["evaluable"] is False and only["n_positive"] > MIN_POSITIVES
    assert only["reason"] == f"positives from too few patients (1 < {MIN_PATIENTS})"
    assert result["macro_auc"] is None and result["evaluable_findings"] == []


def test_the_patient_interval_of_average_precision_is_scikit_learns_per_resample(scored):
    labels, scores, patients = scored
    y, s = labels[:, 0], scores[:, 0]
    weights = patient_draw_weights(patients, 60, 3)
    per_draw = [skm.average_precision_score(y, s, sample_weight=w) for w in weights]
    expected = np.percentile(per_draw, [2.5, 97.5])
    found = patient_average_precision_ci(y, s, patients, 60, 3)["average_precision_ci95"]
    np.testing.assert_allclose(found, expected)


def test_thresholds_are_chosen_on_val_per_finding(scored):
    labels, scores, _ = scored
    labels = labels.copy()
    labels[:, 2] = 0  # no positive on val: 0.5, and the rule says why
    chosen = choose_finding_thresholds(labels, scores, ["A", "B", "C"])
    assert chosen["A"]["rule"] == "youden_on_val" and 0 < chosen["A"]["threshold"] < 1
    assert chosen["C"]["threshold"] == 0.5 and "no positive" in chosen["C"]["rule"]


# --- the head and its loss ----------------------------------------------------------


def test_finding_weights_balance_each_finding():
    negative, positive = finding_weights([10, 50, 0], 100)
    assert positive[0] == pytest.approx(100 / (2 * 10))
    assert negative[0] == pytest.approx(100 / (2 * 90))
    assert positive[1] == negative[1] == pytest.approx(1.0)
    assert positive[2] == negative[2] == 1.0  # never seen: left alone


def test_the_weighted_loss_is_cross_entropy_weighted_per_finding():
    y = np.array([[1, 0, 1], [0, 0, 1]], dtype="float32")
    p = np.array([[0.8, 0.3, 0.6], [0.2, 0.1, 0.9]], dtype="float32")
    positive, negative = [2.0, 3.0, 0.5], [0.5, 1.0, 4.0]
    loss = FindingWeightedCrossentropy(positive, negative)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    weights = y * np.array(positive) + (1 - y) * np.array(negative)
    assert float(loss(y, p)) == pytest.approx(float((weights * bce).mean()), rel=1e-5)
    # With unit weights it is Keras' own binary cross-entropy.
    ones = FindingWeightedCrossentropy([1.0] * 3, [1.0] * 3)
    assert float(ones(y, p)) == pytest.approx(float(keras.losses.BinaryCrossentropy()(y, p)))
    assert isinstance(make_loss(3, "focal", multilabel=True), keras.losses.BinaryFocalCrossentropy)


def test_a_finding_view_of_the_model_scores_that_finding():
    from components.explain.scores import finding_model
    from models import build_model

    model = build_model("cnn", 32, 3, multilabel=True)
    assert model.outputs[0].shape[-1] == 3
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
    full = model.predict(images, verbose=0)
    for k in range(3):
        view = finding_model(model, k).predict(images, verbose=0)
        np.testing.assert_allclose(view[:, 0], full[:, k], atol=1e-6)


# --- phantoms -----------------------------------------------------------------------


def test_multilabel_phantoms_have_one_mask_per_finding_shown():
    image, masks = make_multilabel_phantom(11, ("Effusion", "Nodule"), 64)
    assert image.shape == (64, 64) and set(masks) == {"Effusion", "Nodule"}
    assert all(mask.any() for mask in masks.values())
    assert not (masks["Effusion"] & masks["Nodule"]).all()
    plain, none = make_multilabel_phantom(11, (), 64)
    assert none == {} and not np.array_equal(plain, image)
    # Adding a finding does not move another: each has its own random stream.
    _, alone = make_multilabel_phantom(11, ("Nodule",), 64)
    np.testing.assert_array_equal(alone["Nodule"], masks["Nodule"])
    assert set(MULTILABEL_FINDINGS) >= set(masks)


def test_the_binary_phantoms_are_unchanged():
    image, mask = make_phantom(7, True, 64)
    digest = hashlib.sha256(image.tobytes() + mask.tobytes()).hexdigest()[:16]
    assert digest == BINARY_PHANTOM_DIGEST


# sha256 of make_phantom(7, True, 64) on main before the multi-label option was added.
BINARY_PHANTOM_DIGEST = "5d0314aa8a01eb6d"
