"""Explainer for the heart models: what each model learned, in one unit (log-odds).

* lasso: coefficients (standardized inputs) and the features L1 dropped; SHAP values
  from shap.LinearExplainer.
* mlp: SHAP values from shap.DeepExplainer (DeepLIFT-based SHAP, the explainer made for
  deep networks: fast, and its values add up to the output minus the expected value) on
  the logit, against a seeded sample of train rows as background; beeswarm, bar and
  per-patient waterfall plots.
* nam: the model is its own explanation: one shape function per feature, plotted with
  the train data density, and importance as the mean absolute centred contribution.

All attributions are summed per original feature (one-hot blocks, value + missing
indicator) and are in log-odds, so the three importance rankings can be set side by side:
for the additive models (lasso, NAM) the centred contributions are exactly their SHAP
values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shap
from scipy.stats import spearmanr

from components.artifacts import read_json, write_csv, write_json
from components.heart.attributions import background_rows, deep_shap, group_sum, plot_waterfall
from components.heart.model_files import (
    MODEL_COLORS,
    load_model,
    model_dir,
    predict_logit,
    trained_models,
)
from components.heart.partitions import HOLDOUT, Partition, load_partition, numeric_scaling
from components.reporting import html_page as report
from components.reporting.figures import plt, save_figure
from datasets.heart_failure import schema
from models.nam import bias, contributions


def linear_shap(model: Any, background: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """SHAP values of a linear model (shap.LinearExplainer, features independent over `background`)
    for the rows `x`, with the expected value: (rows, columns), log-odds."""
    explainer = shap.LinearExplainer(model, shap.maskers.Independent(background))
    return np.asarray(explainer.shap_values(x)), float(np.ravel(explainer.expected_value)[0])


def nam_shap(model: Any, background: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Centred contributions f_i(x_i) - mean_background f_i: an additive model's exact
    (interventional) SHAP values against the same background as the other models."""
    centre = contributions(model, background).mean(axis=0)
    values = contributions(model, x) - centre
    return values, bias(model) + float(centre.sum())


def raw_rows(examples: pd.DataFrame, patient_ids: np.ndarray) -> pd.DataFrame:
    """The original (untransformed) feature values of the given patients, in that order."""
    return examples.set_index("patient_id").loc[patient_ids, list(schema.FEATURES)]


def numeric_codes(raw: pd.DataFrame) -> pd.DataFrame:
    """Colour values for the beeswarm: numbers as measured (NaN if missing), categories
    as their index in the schema's order."""
    coded = schema.zeros_as_missing(raw)
    for name, values in schema.CATEGORICAL.items():
        coded[name] = raw[name].map({v: i for i, v in enumerate(values)}).astype(float)
    return coded.astype(float)


def additivity_error(values: np.ndarray, expected: float, logits: np.ndarray) -> float:
    """The largest gap, over rows, between attributions plus the expected value and the model's
    logit: SHAP's additivity, checked (near 0 for an exact explainer)."""
    return float(np.max(np.abs(values.sum(axis=1) + expected - logits)))


def mean_abs(grouped: pd.DataFrame) -> dict[str, float]:
    """Each feature's mean absolute attribution over the rows: the importance explanations.json and
    the cross-check report."""
    return {k: float(v) for k, v in grouped.abs().mean().items()}


# ---------------------------------------------------------------------------- lasso
def plot_coefficients(columns: list[str], coef: np.ndarray, C: float) -> plt.Figure:
    """lasso_coefficients.png: the lasso's coefficients sorted, positive red, negative blue, and the
    columns L1 dropped (zero) grey and marked."""
    order = np.argsort(coef)
    fig, ax = plt.subplots(figsize=(7, 6))
    colors = [
        "lightgrey" if coef[i] == 0 else ("tab:red" if coef[i] > 0 else "tab:blue") for i in order
    ]
    ax.barh(np.arange(len(order)), coef[order], color=colors)
    ax.set_yticks(
        np.arange(len(order)),
        [columns[i] + ("  (dropped)" if coef[i] == 0 else "") for i in order],
        fontsize=8,
    )
    ax.axvline(0, color="k", lw=0.8)
    ax.set(
        xlabel="coefficient (log-odds per unit: per SD for numerics, 0/1 otherwise)",
        title=f"Lasso (L1 logistic regression), C={C:.3g} chosen by 5-fold CV",
    )
    return fig


# ---------------------------------------------------------------------------- shap plots
def shap_explanation(
    grouped: pd.DataFrame, expected: float, colour: pd.DataFrame
) -> shap.Explanation:
    """A shap.Explanation of per-feature attributions, coloured in the beeswarm by `colour` (the
    patients' raw values, `numeric_codes`)."""
    return shap.Explanation(
        values=grouped.to_numpy(),
        base_values=np.full(len(grouped), expected),
        data=colour.to_numpy(),
        feature_names=list(grouped.columns),
    )


def plot_beeswarm(explanation: shap.Explanation) -> plt.Figure:
    """mlp_shap_beeswarm.png: every test patient's SHAP value per feature, coloured by the feature's
    value."""
    fig = plt.figure(figsize=(7, 5))
    shap.plots.beeswarm(
        explanation, max_display=len(explanation.feature_names), show=False, plot_size=None
    )
    plt.title("MLP: SHAP values on test patients (log-odds)")
    return fig


def plot_bar(explanation: shap.Explanation) -> plt.Figure:
    """mlp_shap_bar.png: the MLP's mean absolute SHAP value per feature on the test split."""
    fig = plt.figure(figsize=(7, 5))
    shap.plots.bar(explanation, max_display=len(explanation.feature_names), show=False)
    plt.title("MLP: mean |SHAP value| on test patients (log-odds)")
    return fig


def waterfall_cases(probability: np.ndarray, threshold: float) -> dict[str, int]:
    """Row indices of the highest-risk, lowest-risk and most borderline test patients."""
    return {
        "highest_risk": int(np.argmax(probability)),
        "lowest_risk": int(np.argmin(probability)),
        "borderline": int(np.argmin(np.abs(probability - threshold))),
    }


# ---------------------------------------------------------------------------- nam plots
def group_contribution(
    model: Any, columns: list[str], group: list[str], settings: dict[str, np.ndarray]
) -> np.ndarray:
    """Sum of the group's f_i on rows where only the group's columns are set (the other
    columns cannot change the group's terms)."""
    index = {c: i for i, c in enumerate(columns)}
    rows = len(next(iter(settings.values())))
    grid = np.zeros((rows, len(columns)), dtype=np.float32)
    for column, values in settings.items():
        grid[:, index[column]] = values
    return contributions(model, grid)[:, [index[c] for c in group]].sum(axis=1)


def plot_shape_functions(
    model: Any, partition: Partition, raw_train: pd.DataFrame, centre: pd.Series
) -> plt.Figure:
    """nam_shape_functions.png: the NAM's learned contribution (log-odds, centred on its train mean)
    per feature over the range of the measured train values (raw units), with their histogram behind
    and the imputed (not measured) value marked; a categorical or binary feature's contribution per
    level, with its train count."""
    columns = partition.columns
    scaling = numeric_scaling(partition.preprocessor)
    measured = schema.zeros_as_missing(raw_train)
    fig, axes = plt.subplots(3, 4, figsize=(14, 9.5))
    for ax, feature in zip(axes.flat, schema.FEATURES):
        group = partition.groups[feature]
        if feature in schema.NUMERIC:
            values = measured[feature].dropna()
            grid = np.linspace(values.min(), values.max(), 200)
            mean, scale = scaling[feature]
            settings = {feature: (grid - mean) / scale}
            if f"{feature}_missing" in group:
                settings[f"{feature}_missing"] = np.zeros_like(grid)
            curve = group_contribution(model, columns, group, settings)
            density = ax.twinx()
            density.hist(values, bins=30, color="lightgrey", alpha=0.6)
            density.set_yticks([])
            ax.set_zorder(density.get_zorder() + 1)
            ax.patch.set_visible(False)
            ax.plot(grid, curve - centre[feature], color="tab:orange", lw=2)
            missing = int(measured[feature].isna().sum())
            if f"{feature}_missing" in group and missing:
                # Imputed rows: the train median and the indicator set to 1.
                median = float(
                    partition.preprocessor.named_transformers_["numeric"]
                    .named_steps["impute"]
                    .statistics_[schema.NUMERIC.index(feature)]
                )
                point = group_contribution(
                    model,
                    columns,
                    group,
                    {
                        feature: np.array([(median - mean) / scale]),
                        f"{feature}_missing": np.ones(1),
                    },
                )
                ax.plot(
                    [grid[0]],
                    point - centre[feature],
                    "kD",
                    clip_on=False,
                    label=f"not measured (n={missing})",
                )
                ax.legend(fontsize=7, loc="lower right")
        else:
            levels = schema.CATEGORICAL.get(feature, (0.0, 1.0))
            heights = []
            for level in levels:
                settings = (
                    {c: np.array([float(c == f"{feature}_{level}")]) for c in group}
                    if feature in schema.CATEGORICAL
                    else {feature: np.array([level])}
                )
                heights.append(
                    float(group_contribution(model, columns, group, settings)[0] - centre[feature])
                )
            counts = raw_train[feature].value_counts()
            labels = [f"{level}\nn={int(counts.get(level, 0))}" for level in levels]
            ax.bar(range(len(levels)), heights, color="tab:orange", alpha=0.85)
            ax.set_xticks(range(len(levels)), labels, fontsize=8)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(feature)
    axes.flat[-1].axis("off")
    axes.flat[-1].text(
        0,
        0.5,
        "Each panel: the NAM's contribution to the\nlog-odds of heart "
        "disease (centred on\nthe train mean). Grey: train data density;\n"
        "n: train patients per category.",
        fontsize=9,
    )
    fig.suptitle("Neural Additive Model: shape functions")
    fig.tight_layout()
    return fig


def plot_importance(importance: dict[str, float], title: str, color: str) -> plt.Figure:
    """A bar chart of per-feature importance (mean absolute contribution, log-odds), smallest at the
    bottom."""
    items = sorted(importance.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.barh([k for k, _ in items], [v for _, v in items], color=color)
    ax.set(xlabel="mean |contribution| on test patients (log-odds)", title=title)
    return fig


def plot_cross_check(importance: dict[str, dict[str, float]]) -> plt.Figure:
    """importance_cross_check.png: every model's per-feature importance side by side, features
    ordered by their mean importance across models."""
    models = list(importance)
    features = sorted(schema.FEATURES, key=lambda f: np.mean([importance[m][f] for m in models]))
    fig, ax = plt.subplots(figsize=(8, 6.5))
    height = 0.8 / len(models)
    for i, kind in enumerate(models):
        ax.barh(
            np.arange(len(features)) + i * height,
            [importance[kind][f] for f in features],
            height,
            label=kind,
            color=MODEL_COLORS.get(kind),
        )
    ax.set_yticks(np.arange(len(features)) + height * (len(models) - 1) / 2, features)
    ax.set(
        xlabel="mean |SHAP value| on test patients (log-odds)",
        title="Feature importance: the three models side by side",
    )
    ax.legend(loc="lower right")
    return fig


def rank_agreement(importance: dict[str, dict[str, float]]) -> dict[str, float]:
    """Spearman's rank correlation of feature importance between every pair of models
    (`<a>_vs_<b>`): do they rely on the same features?"""
    models = list(importance)
    result = {}
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            rho = spearmanr(
                [importance[a][f] for f in schema.FEATURES],
                [importance[b][f] for f in schema.FEATURES],
            ).statistic
            result[f"{a}_vs_{b}"] = float(rho)
    return result


# ---------------------------------------------------------------------------- run
class Context:
    """What every model's explanation needs: the rows, the background, a figure sink."""

    def __init__(
        self,
        out_dir: Path,
        examples: Path,
        transform: Path,
        seed: int,
        background_size: int,
        tensorboard_dir: Path | None,
    ):
        self.out_dir, self.tensorboard_dir = out_dir, tensorboard_dir
        self.partition = load_partition(transform, HOLDOUT)
        table = pd.read_csv(examples / "examples.csv")
        self.x_train, self.x_test = self.partition.x("train"), self.partition.x("test")
        self.raw_train = raw_rows(table, self.partition.ids("train"))
        self.raw_test = raw_rows(table, self.partition.ids("test"))
        self.background = background_rows(self.x_train, background_size, seed)
        self.figures: list[str] = []

    def save(self, name: str, fig: plt.Figure) -> None:
        """Saves the figure as `<name>.png` (and a TensorBoard image), closes it and lists its name
        among the report's figures."""
        # Saved (and closed) at once: shap's plots draw on pyplot's current figure.
        save_figure(fig, self.out_dir / f"{name}.png", self.tensorboard_dir, f"explainer/{name}")
        self.figures.append(name)


def explain_lasso(ctx: Context, model: Any) -> tuple[np.ndarray, float, dict[str, Any]]:
    """The lasso's SHAP values on the test rows, its coefficients figure, and what explanations.json
    records of it: C, every coefficient, the columns L1 dropped and the original features all of
    whose columns it dropped."""
    values, expected = linear_shap(model, ctx.background, ctx.x_test)
    columns, coef = ctx.partition.columns, model.coef_[0]
    dropped = [c for c, w in zip(columns, coef) if w == 0]
    ctx.save("lasso_coefficients", plot_coefficients(columns, coef, float(model.C_)))
    return (
        values,
        expected,
        {
            "explainer": "shap.LinearExplainer",
            "C": float(model.C_),
            "coefficients": dict(zip(columns, coef.tolist())),
            "dropped_columns": dropped,
            "dropped_features": [
                f for f, cols in ctx.partition.groups.items() if all(c in dropped for c in cols)
            ],
        },
    )


def explain_mlp(
    ctx: Context, model: Any, threshold: float
) -> tuple[np.ndarray, float, dict[str, Any]]:
    """The MLP's SHAP values on the test rows (DeepExplainer on the logit), the beeswarm and bar
    figures, and waterfalls of the highest-risk, lowest-risk and most borderline patients (at the
    Evaluator's `threshold`), which explanations.json records."""
    values, expected = deep_shap(model, ctx.background, ctx.x_test)
    grouped = group_sum(values, ctx.partition.columns, ctx.partition.groups)
    explanation = shap_explanation(grouped, expected, numeric_codes(ctx.raw_test))
    ctx.save("mlp_shap_beeswarm", plot_beeswarm(explanation))
    ctx.save("mlp_shap_bar", plot_bar(explanation))
    probability = 1 / (1 + np.exp(-predict_logit(model, ctx.x_test)))
    waterfalls = {}
    for case, row in waterfall_cases(probability, threshold).items():
        patient = int(ctx.partition.ids("test")[row])
        truth = schema.CLASS_NAMES[int(ctx.partition.y("test")[row])]
        ctx.save(
            f"mlp_waterfall_{case}",
            plot_waterfall(
                grouped.to_numpy()[row],
                expected,
                ctx.raw_test.iloc[row],
                f"MLP, {case.replace('_', ' ')}: patient {patient} (CSV line), "
                f"risk {probability[row]:.2f}, truth {truth}; SHAP in log-odds",
            ),
        )
        waterfalls[case] = {
            "patient_id": patient,
            "probability": float(probability[row]),
            "truth": truth,
        }
    return values, expected, {"explainer": "shap.DeepExplainer", "waterfalls": waterfalls}


def explain_nam(ctx: Context, model: Any) -> tuple[np.ndarray, float, dict[str, Any]]:
    """The NAM's SHAP values on the test rows, its shape functions (centred on the train rows' mean
    contribution) and importance figures; explanations.json records its bias."""
    values, expected = nam_shap(model, ctx.background, ctx.x_test)
    centre = group_sum(
        contributions(model, ctx.x_train), ctx.partition.columns, ctx.partition.groups
    ).mean()
    ctx.save(
        "nam_shape_functions", plot_shape_functions(model, ctx.partition, ctx.raw_train, centre)
    )
    importance = mean_abs(group_sum(values, ctx.partition.columns, ctx.partition.groups))
    ctx.save(
        "nam_importance", plot_importance(importance, "NAM feature importance", MODEL_COLORS["nam"])
    )
    return values, expected, {"bias": bias(model)}


def run(
    out_dir: Path,
    *,
    examples: Path,
    transform: Path,
    trainer: Path,
    evaluator: Path,
    seed: int,
    background_size: int = 100,
    tensorboard_dir: Path | None = None,
) -> dict[str, Any]:
    """The heart Explainer: each holdout model's attributions on the test rows, in log-odds and
    summed per original feature, their additivity error, importance and (with several models) the
    cross-check and rank agreement. Writes explanations.json, attributions.csv, the figures and
    report.html."""
    ctx = Context(out_dir, examples, transform, seed, background_size, tensorboard_dir)
    metrics = read_json(evaluator / "metrics.json")
    explanations: dict[str, Any] = {
        "unit": "log-odds",
        "explained_rows": "test",
        "background": {"rows": len(ctx.background), "seed": seed},
    }
    importance: dict[str, dict[str, float]] = {}
    attributions = []
    models = trained_models(trainer)
    for kind in models:
        model = load_model(model_dir(trainer, HOLDOUT, kind))
        if kind == "lasso":
            values, expected, info = explain_lasso(ctx, model)
        elif kind == "mlp":
            values, expected, info = explain_mlp(ctx, model, metrics["mlp"]["threshold"])
        else:
            values, expected, info = explain_nam(ctx, model)
        grouped = group_sum(values, ctx.partition.columns, ctx.partition.groups)
        importance[kind] = mean_abs(grouped)
        logits = predict_logit(model, ctx.x_test)
        explanations[kind] = {
            **info,
            "expected_value": expected,
            "additivity_max_abs_error": additivity_error(values, expected, logits),
            "mean_abs_contribution": importance[kind],
        }
        attributions.append(grouped.assign(model=kind, patient_id=ctx.partition.ids("test")))
    if len(importance) > 1:
        ctx.save("importance_cross_check", plot_cross_check(importance))
        explanations["rank_agreement_spearman"] = rank_agreement(importance)
    explanations["importance"] = importance
    write_json(out_dir / "explanations.json", explanations)
    write_csv(out_dir / "attributions.csv", pd.concat(attributions, ignore_index=True))
    write_html(out_dir, explanations, ctx.figures)
    return {
        "figures": ctx.figures,
        "additivity_max_abs_error": {
            k: explanations[k]["additivity_max_abs_error"] for k in models
        },
        "rank_agreement_spearman": explanations.get("rank_agreement_spearman", {}),
    }


def write_html(out_dir: Path, explanations: dict[str, Any], figures: list[str]) -> None:
    """report.html: the importance cross-check, then a section per model present (lasso
    coefficients, MLP SHAP plots and waterfalls, NAM shape functions), from explanations.json's
    contents."""
    parts = []
    if "importance_cross_check" in figures:
        agreement = ", ".join(
            f"{k.replace('_vs_', ' vs ')} {v:.2f}"
            for k, v in explanations["rank_agreement_spearman"].items()
        )
        parts.append(
            report.section(
                "Feature importance cross-check",
                report.paragraph(
                    "Mean absolute attribution per original feature on the test split, "
                    f"in log-odds. Rank agreement (Spearman): {agreement}."
                ),
                report.image(out_dir / "importance_cross_check.png"),
            )
        )
    if "lasso" in explanations:
        lasso = explanations["lasso"]
        parts.append(
            report.section(
                "Lasso",
                report.paragraph(
                    f"C = {lasso['C']:.3g}. Dropped columns: "
                    f"{', '.join(lasso['dropped_columns']) or 'none'}. Dropped features (every "
                    f"column zero): {', '.join(lasso['dropped_features']) or 'none'}."
                ),
                report.image(out_dir / "lasso_coefficients.png"),
            )
        )
    if "mlp" in explanations:
        parts.append(
            report.section(
                "MLP: SHAP (DeepExplainer)",
                report.paragraph(
                    f"Background: {explanations['background']['rows']} train rows "
                    f"(seed {explanations['background']['seed']}); additivity error "
                    f"{explanations['mlp']['additivity_max_abs_error']:.2e}."
                ),
                report.paragraph(
                    "Beeswarm colours: numbers as measured (grey: not measured); "
                    "categories in this order, low to high: "
                    + "; ".join(f"{k} {', '.join(v)}" for k, v in schema.CATEGORICAL.items()),
                    note=True,
                ),
                *(
                    report.image(out_dir / f"{name}.png")
                    for name in figures
                    if name.startswith("mlp_")
                ),
            )
        )
    if "nam" in explanations:
        parts.append(
            report.section(
                "Neural Additive Model",
                report.image(out_dir / "nam_shape_functions.png"),
                report.image(out_dir / "nam_importance.png"),
            )
        )
    report.write_report(out_dir / "report.html", "Heart disease: explanations", parts)
