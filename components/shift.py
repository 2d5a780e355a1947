"""Dataset shift: do new images look like the training run's validation images?

The Evaluator's shift report (`evaluator/shift.json`, a section of `report.html`)
compares the images of an evaluation with the validation split of the run that trained
the model, three ways, each a two-sample test with a p-value and an effect size:

- scores: the model's pneumonia scores, Kolmogorov-Smirnov; effect: the KS statistic D,
  the largest gap between the two cumulative distributions. Beside it, the share flagged
  at the frozen threshold on each side (a descriptive figure, not a test).
- features: the pooled features the model's output layer reads (the Projector's): a
  domain classifier, how well a linear model tells the two sets apart (cross-validated
  AUC; 0.5 = not at all); the AUC is also the effect.

Both p-values come from permutations of patients between the two sets, not of images:
a patient's images resemble each other, and tests that take them as independent (scipy's
KS p-value, reported beside) flagged random subsets of held-out patients far more often
than their level. Permuting whole patients keeps the level where it is stated.
- image statistics: intensity quantiles, contrast, sharpness and border brightness of
  the decoded images the model sees, per folder and with the same classifier test; they
  describe, they do not decide (they flagged held-out patients of a development run).

The decision rule is fixed (README, "Evaluate on your own hospital's images"): drift is
detected when the scores' or the features' test has a p-value below ALPHA / 2
(Bonferroni over the two) and an effect at least its floor (D >= 0.1, AUC >= 0.6). The p-value
keeps small samples from flagging noise; the floor keeps huge samples from flagging a
shift too small to matter. A change in the share of pneumonia alone moves the scores, so
the score test reports a new prevalence as shift too: it changes what is flagged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from components.images import stored_size

ALPHA = 0.01
MIN_KS_STATISTIC = 0.1
MIN_DOMAIN_AUC = 0.6
PERMUTATIONS = 2000
# The tests' samples: at most this many images a side (seeded), which bounds the
# permutation tests' memory (n^2 for the classifier) and still detects any shift that
# matters (a KS D of 0.1 between 1000 and 1000 images has p < 0.005).
MAX_TEST_IMAGES = 1000
# The classifier reads the features' main components (fitted on both sets together,
# blind to which is which, so the permutation test stays exact): with a few dozen
# images a side, all 256 features overfit. On a development run (64 px) power on
# 50-image subsets of the site rose up to about 40 components of 5-256 and flattened;
# subsets of held-out patients stayed quiet at every setting.
FEATURE_COMPONENTS = 40
HISTOGRAM_BINS = 16
STATISTIC_NAMES = (
    "p01",
    "p05",
    "p25",
    "p50",
    "p75",
    "p95",
    "p99",
    "std",
    "log_sharpness",
    "border_mean",
)


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """One side of the comparison: a set of images and what the model made of them."""

    paths: np.ndarray  # (n,) file paths
    images: np.ndarray  # (n, s, s, 1) uint8, the pixels the model saw
    scores: np.ndarray  # (n,) pneumonia score
    flagged: np.ndarray  # (n,) bool: labelled pneumonia at the threshold
    features: np.ndarray  # (n, d) pooled features
    # (n,) patient ids: the tests permute patients, not images (None: one image each).
    patients: np.ndarray | None = None

    def patient_ids(self) -> np.ndarray:
        """Each image's patient as a string; each image its own patient when none are known."""
        return (
            np.arange(len(self.scores)).astype(str)
            if self.patients is None
            else np.asarray(self.patients).astype(str)
        )


def sharpness(images: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian per image (a blurred image has little): (n, h, w) -> (n,)."""
    x = images.astype(np.float32)
    laplacian = (
        x[:, 1:-1, :-2] + x[:, 1:-1, 2:] + x[:, :-2, 1:-1] + x[:, 2:, 1:-1] - 4 * x[:, 1:-1, 1:-1]
    )
    return laplacian.reshape(len(x), -1).var(axis=1)


def border_mean(images: np.ndarray) -> np.ndarray:
    """Mean intensity of each image's outer sixteenth on every side: frames, collimation
    and burned-in borders differ between scanners more than lungs do."""
    edge = max(1, images.shape[1] // 16)
    mask = np.ones(images.shape[1:3], dtype=bool)
    mask[edge:-edge, edge:-edge] = False
    return images[:, mask].mean(axis=1)


def image_statistics(images: np.ndarray) -> np.ndarray:
    """(n, len(STATISTIC_NAMES)) per image, in STATISTIC_NAMES' order, from uint8 pixels."""
    x = images[..., 0] if images.ndim == 4 else images
    flat = x.reshape(len(x), -1).astype(np.float32)
    quantiles = np.percentile(flat, [1, 5, 25, 50, 75, 95, 99], axis=1).T
    return np.column_stack(
        [quantiles, flat.std(axis=1), np.log1p(sharpness(x)), border_mean(x)]
    ).astype(np.float64)


def folder_statistics(side: str, paths: np.ndarray, images: np.ndarray) -> dict[str, Any]:
    """Per folder of image files: count, stored size, intensity histogram, sharpness."""
    folders = pd.Series([str(Path(p).parent) for p in paths])
    found: dict[str, Any] = {}
    for folder, rows in folders.groupby(folders).groups.items():
        chosen = images[np.asarray(rows)][..., 0]
        sizes = np.array([stored_size(Path(paths[i])) or (0, 0) for i in rows], dtype=float)
        histogram, _ = np.histogram(chosen, bins=HISTOGRAM_BINS, range=(0, 256))
        found[str(folder)] = {
            "side": side,
            "n": int(len(rows)),
            "stored_width_median": float(np.median(sizes[:, 0])),
            "stored_height_median": float(np.median(sizes[:, 1])),
            "stored_width_range": [float(sizes[:, 0].min()), float(sizes[:, 0].max())],
            "mean_intensity": float(chosen.mean()),
            "mean_contrast": float(chosen.reshape(len(chosen), -1).std(axis=1).mean()),
            "median_sharpness": float(np.median(sharpness(chosen))),
            "border_mean": float(border_mean(chosen).mean()),
            "intensity_histogram": (histogram / max(histogram.sum(), 1)).round(5).tolist(),
        }
    return found


def out_of_fold_operator(x: np.ndarray, folds: int, ridge: float, seed: int) -> np.ndarray:
    """The (n, n) matrix M with M @ y = the out-of-fold predictions of a ridge regression
    of y on `x` (with intercept), for any labels y, on fixed shuffled folds.

    Ridge's fit is linear in y, so one matrix serves every permutation of the labels: the
    permutation test then costs one matrix product instead of a refit per permutation.
    The folds ignore the labels (KFold, not stratified), as exchangeability requires.
    """
    operator = np.zeros((len(x), len(x)))
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(x):
        centre = x[train].mean(axis=0)
        centred = x[train] - centre
        # beta = A @ y_train: the centred columns sum to zero, so A absorbs y's own centring.
        a = np.linalg.solve(centred.T @ centred + ridge * np.eye(x.shape[1]), centred.T)
        operator[np.ix_(held, train)] = (x[held] - centre) @ a + 1.0 / len(train)
    return operator


def auc_columns(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """ROC AUC of each column of `scores` (n, p) for its column of 0/1 `labels` (n, p),
    from ranks (Mann-Whitney), ties counted half."""
    ranks = stats.rankdata(scores, axis=0)
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    rank_sum = (ranks * labels).sum(axis=0)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def clusters(reference: np.ndarray, new: np.ndarray) -> np.ndarray:
    """One integer per image of both sets (reference first): its patient on its side."""
    named = np.concatenate([np.char.add("r:", reference), np.char.add("n:", new)])
    return np.unique(named, return_inverse=True)[1].ravel()


def permuted_sides(
    groups: np.ndarray, new_groups: np.ndarray, permutations: int, rng: np.random.Generator
):
    """Blocks of (images, permutations) 0/1 side labels, patients shuffled between the
    sides as wholes: one patient's images are alike, so shuffling images would make two
    sets of patients look more different than chance and cry wolf."""
    side_of_group = np.isin(np.arange(groups.max() + 1), new_groups).astype(float)
    for done in range(0, permutations, 250):  # in blocks: bounded memory
        block = rng.permuted(np.tile(side_of_group, (min(250, permutations - done), 1)), axis=1)
        yield block[:, groups].T


def permutation_p_value(observed: float, null: list[np.ndarray], permutations: int) -> float:
    """The permutation test's p-value: (1 + permutations whose statistic reaches `observed`) / (1 +
    permutations), never 0; `null` holds the statistics in blocks."""
    exceed = sum(int(np.sum(values >= observed - 1e-12)) for values in null)
    return (1 + exceed) / (1 + permutations)


def domain_classifier_test(
    a: np.ndarray,
    b: np.ndarray,
    permutations: int,
    seed: int,
    groups: np.ndarray | None = None,
    ridge: float = 1.0,
) -> tuple[float, float]:
    """How well a linear classifier tells `b` from `a`, and whether better than chance.

    The classifier is a ridge regression of the side label (0 for `a`, 1 for `b`) on the
    vectors (least squares: Fisher's discriminant direction); its statistic is the AUC of
    its out-of-fold predictions (5-fold; 0.5 = indistinguishable) and the p-value the
    share of permutations of the patients (`groups`, one id per row of a then b;
    default one row each) between the sides that reach it. Returns (AUC, p-value); NaN
    and 1 below 2 vectors a side.
    """
    if min(len(a), len(b)) < 2:
        return float("nan"), 1.0
    x = np.vstack([a, b])
    side = (np.arange(len(x)) >= len(a)).astype(float)
    groups = np.arange(len(x)) if groups is None else groups
    operator = out_of_fold_operator(x, min(5, len(x)), ridge, seed)
    observed = float(auc_columns((operator @ side)[:, None], side[:, None])[0])
    rng = np.random.default_rng(seed)
    null = [
        auc_columns(operator @ sides, sides)
        for sides in permuted_sides(groups, np.unique(groups[len(a) :]), permutations, rng)
    ]
    return observed, permutation_p_value(observed, null, permutations)


def ks_statistics(values: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """The two-sample Kolmogorov-Smirnov statistic D of `values` split by each column of
    0/1 `sides` (n, p): the largest gap between the two empirical distributions."""
    order = np.argsort(values, kind="stable")
    ordered = sides[order]
    new = np.cumsum(ordered, axis=0) / ordered.sum(axis=0)
    reference = np.cumsum(1.0 - ordered, axis=0) / (1.0 - ordered).sum(axis=0)
    # Compare only after the last of equal values: ties step both curves at once.
    last = np.r_[np.diff(values[order]) != 0, True]
    return np.abs(new - reference)[last].max(axis=0)


def main_components(a: np.ndarray, b: np.ndarray, components: int) -> tuple[np.ndarray, ...]:
    """Both sets standardized together and projected on their pooled main components."""
    pooled = StandardScaler().fit_transform(np.vstack([a, b]))
    kept = min(components, pooled.shape[0] - 1, pooled.shape[1])
    if kept >= 1:
        pooled = PCA(n_components=kept, random_state=0).fit_transform(pooled)
    return pooled[: len(a)], pooled[len(a) :]


def subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` of `n` indices, drawn without replacement and sorted, so the permutation
    tests' cost stays bounded; all of them when `n` is within the limit."""
    return np.sort(rng.choice(n, size=limit, replace=False)) if n > limit else np.arange(n)


def multivariate_test(
    a: np.ndarray,
    b: np.ndarray,
    patients: tuple[np.ndarray, np.ndarray],
    name: str,
    seed: int,
    components: int | None = None,
) -> dict[str, Any]:
    """The domain-classifier test of two samples of vectors (features or statistics)."""
    rng = np.random.default_rng(seed)
    kept_a = subsample(len(a), MAX_TEST_IMAGES, rng)
    kept_b = subsample(len(b), MAX_TEST_IMAGES, rng)
    a, b = a[kept_a], b[kept_b]
    if components:
        a, b = main_components(a, b, components)
    else:
        scaler = StandardScaler().fit(np.vstack([a, b]))
        a, b = scaler.transform(a), scaler.transform(b)
    groups = clusters(patients[0][kept_a], patients[1][kept_b])
    auc, p_value = domain_classifier_test(a, b, PERMUTATIONS, seed, groups)
    return {
        "test": name,
        "method": "domain classifier (ridge), 5-fold cross-validated AUC, p-value permuting "
        "patients",
        "statistic": auc,
        "p_value": p_value,
        "effect": auc,
        "effect_name": "domain classifier AUC",
        "effect_floor": MIN_DOMAIN_AUC,
        "n_reference": int(len(a)),
        "n_new": int(len(b)),
    }


def score_test(reference: ImageSet, new: ImageSet, seed: int = 0) -> dict[str, Any]:
    """Kolmogorov-Smirnov on the scores; the p-value that decides permutes patients
    (scipy's, which takes every image as independent, is reported beside it)."""
    rng = np.random.default_rng(seed)
    kept_a = subsample(len(reference.scores), MAX_TEST_IMAGES, rng)
    kept_b = subsample(len(new.scores), MAX_TEST_IMAGES, rng)
    a, b = reference.scores[kept_a], new.scores[kept_b]
    values = np.concatenate([a, b]).astype(float)
    groups = clusters(reference.patient_ids()[kept_a], new.patient_ids()[kept_b])
    side = (np.arange(len(values)) >= len(a)).astype(float)
    observed = float(ks_statistics(values, side[:, None])[0])
    new_groups = np.unique(groups[len(a) :])
    null = [
        ks_statistics(values, sides)
        for sides in permuted_sides(groups, new_groups, PERMUTATIONS, rng)
    ]
    return {
        "test": "scores",
        "method": "Kolmogorov-Smirnov, p-value permuting patients",
        "statistic": observed,
        "p_value": permutation_p_value(observed, null, PERMUTATIONS),
        "p_value_images_independent": float(stats.ks_2samp(a, b).pvalue),
        "effect": observed,
        "effect_name": "KS statistic D",
        "effect_floor": MIN_KS_STATISTIC,
        "n_reference": int(len(a)),
        "n_new": int(len(b)),
    }


def decide(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marks each test `shifted` by the fixed rule: p < ALPHA / len(tests) (Bonferroni)
    and effect >= its floor (a NaN effect never counts)."""
    level = ALPHA / len(tests)
    return [
        {
            **test,
            "alpha": level,
            "shifted": bool(
                test["p_value"] < level
                and np.isfinite(test["effect"])
                and test["effect"] >= test["effect_floor"]
            ),
        }
        for test in tests
    ]


def shift_report(reference: ImageSet, new: ImageSet, seed: int = 0) -> dict[str, Any]:
    """The shift.json contents: the two deciding tests, the decision, and beside them the
    image statistics' test, the flagged shares and the per-folder figures."""
    patients = (reference.patient_ids(), new.patient_ids())
    tests = decide(
        [
            score_test(reference, new, seed),
            multivariate_test(
                reference.features.reshape(len(reference.features), -1),
                new.features.reshape(len(new.features), -1),
                patients,
                "features",
                seed,
                components=FEATURE_COMPONENTS,
            ),
        ]
    )
    shifted = [t["test"] for t in tests if t["shifted"]]
    return {
        "drift_detected": bool(shifted),
        # The smallest p-value, Bonferroni-adjusted: compare it with ALPHA.
        "p_value": min(1.0, min(t["p_value"] for t in tests) * len(tests)),
        "alpha": ALPHA,
        "shifted_tests": shifted,
        "rule": (
            f"drift when the scores' or the features' test has p < {ALPHA} / {len(tests)} "
            f"(Bonferroni) and an effect at least its floor (KS D >= {MIN_KS_STATISTIC}, "
            f"domain classifier AUC >= {MIN_DOMAIN_AUC})"
        ),
        "tests": tests,
        # Described, not deciding: scanners differ in ways the model is built to ignore
        # (it standardizes each image and trains with acquisition augmentation).
        "image_statistics_test": multivariate_test(
            image_statistics(reference.images),
            image_statistics(new.images),
            patients,
            "image_statistics",
            seed,
        ),
        "flagged_share": {
            "reference": float(np.mean(reference.flagged)),
            "new": float(np.mean(new.flagged)),
        },
        "mean_score": {
            "reference": float(np.mean(reference.scores)),
            "new": float(np.mean(new.scores)),
        },
        "n": {"reference": int(len(reference.scores)), "new": int(len(new.scores))},
        "folders": {
            **folder_statistics("reference", reference.paths, reference.images),
            **folder_statistics("new", new.paths, new.images),
        },
    }


def warning_line(report: dict[str, Any]) -> str:
    """The one line a user sees when drift is detected."""
    flagged = report["flagged_share"]
    return (
        f"drift detected: these images differ from the training run's validation images "
        f"({', '.join(report['shifted_tests'])}; flagged {flagged['new']:.0%} here against "
        f"{flagged['reference']:.0%} on validation); the frozen threshold may not hold here: "
        "see the shift section of evaluator/report.html, and recalibrate with --calibration_dir"
    )
