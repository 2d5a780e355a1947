"""Predictor for a heart run: new patients scored by every trained model
(`python -m pipelines.predict --run_dir HEART_RUN patients.csv`).

The CSV has the 11 training columns in any order (a HeartDisease column, if present, is
ignored). Each row is checked as training rows are (datasets/heart_failure/schema.py); a
row with a missing or invalid value is skipped with one line naming its CSV line and
column, the others are scored. Each row goes through the run's fitted preprocessor, then
every model: its risk and its label at that model's validation threshold. The NAM's
per-feature contributions (they add up, with its bias, to its logit) and the MLP's SHAP
values (against the same seeded background of train rows as the heart Explainer) are
written per patient, with a waterfall plot for the first few. Writes predictions.csv,
nam_contributions.csv, mlp_shap.csv, waterfall_<line>.png, predict.json and report.html.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.artifacts import read_json, write_csv, write_json
from components.errors import DataError
from components.heart.attributions import background_rows, deep_shap, group_sum, plot_waterfall
from components.heart.model_files import load_model, model_dir, predict_proba, trained_models
from components.heart.partitions import HOLDOUT, load_partition
from components.reporting import html_page
from components.reporting.figures import save_figure
from datasets.heart_failure import schema
from models.nam import bias, contributions

WATERFALLS = 5
BACKGROUND_ROWS = 100  # as the heart Explainer's default background_size


def read_patients(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Valid rows (FEATURES + "line") and the skipped ones with the reason."""
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    try:
        raw = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from error
    raw = raw.rename(columns=lambda c: str(c).strip().removeprefix("\ufeff"))
    missing = [c for c in schema.FEATURES if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    kept, skipped = [], []
    for index in raw.index:
        row = raw.loc[[index], list(schema.FEATURES)]
        line = int(index) + 2  # the header is line 1
        blank = [
            c
            for c in schema.FEATURES
            if pd.isna(row.at[index, c]) or not str(row.at[index, c]).strip()
        ]
        if blank:
            skipped.append({"line": line, "reason": f"line {line}: column '{blank[0]}' is empty"})
            continue
        try:
            # The training checks, one row at a time so one bad row does not stop the rest.
            table = schema.validate(row.assign(**{schema.TARGET: "0"}), f"{path.name}")
        except DataError as error:
            skipped.append({"line": line, "reason": str(error)})
            continue
        kept.append(table.frame.drop(columns=[schema.TARGET]).assign(line=line))
    if not kept:
        reason = skipped[0]["reason"] if skipped else "no rows"
        raise DataError(f"{path}: no patient could be scored ({reason})")
    return pd.concat(kept, ignore_index=True), skipped


def waterfall(
    out_dir: Path, values: np.ndarray, expected: float, raw: pd.Series, title: str, name: str
) -> str:
    """Saves one patient's SHAP waterfall (`plot_waterfall`) as `out_dir/name`; returns the name,
    for the page."""
    save_figure(plot_waterfall(values, expected, raw, title), out_dir / name, None, name)
    return name


def run(
    out_dir: Path,
    *,
    run_dir: str,
    csv: list[str],
    seed: int = 42,
) -> dict[str, Any]:
    """Scores the patients in `csv` (one file) with every model of the heart run."""
    if len(csv) != 1:
        raise DataError("a heart run scores one CSV of patients: give exactly one file")
    run_path = Path(run_dir)
    patients, skipped = read_patients(Path(csv[0]))
    partition = load_partition(run_path / "transform", HOLDOUT)
    x = partition.preprocessor.transform(patients[list(schema.FEATURES)]).astype(np.float32)
    metrics = read_json(run_path / "evaluator" / "metrics.json")
    trainer = run_path / "trainer"
    table = patients[["line"]].copy()
    pictures: list[str] = []
    outputs: dict[str, Any] = {}
    for kind in trained_models(trainer):
        model = load_model(model_dir(trainer, HOLDOUT, kind))
        threshold = float(metrics[kind]["threshold"])
        risk = predict_proba(model, x)
        table[f"{kind}_risk"] = risk
        table[f"{kind}_label"] = np.where(risk >= threshold, *reversed(schema.CLASS_NAMES))
        outputs[kind] = {"threshold": threshold}
        if kind == "nam":
            per_feature = group_sum(contributions(model, x), partition.columns, partition.groups)
            per_feature = per_feature.assign(bias=bias(model), line=patients["line"])
            write_csv(out_dir / "nam_contributions.csv", per_feature)
        if kind == "mlp":
            background = background_rows(partition.x("train"), BACKGROUND_ROWS, seed)
            values, expected = deep_shap(model, background, x)
            grouped = group_sum(values, partition.columns, partition.groups)
            write_csv(
                out_dir / "mlp_shap.csv",
                grouped.assign(expected_logit=expected, line=patients["line"]),
            )
            for i in range(min(WATERFALLS, len(patients))):
                pictures.append(
                    waterfall(
                        out_dir,
                        grouped.to_numpy()[i],
                        expected,
                        patients.loc[i, list(schema.FEATURES)],
                        f"MLP, CSV line {patients.at[i, 'line']}: risk {risk[i]:.2f}; SHAP in log-odds",
                        f"waterfall_line{patients.at[i, 'line']}.png",
                    )
                )
    write_csv(out_dir / "predictions.csv", table)
    info = {
        "run_dir": str(run_path),
        "csv": csv[0],
        "models": outputs,
        "scored": int(len(table)),
        "skipped": skipped,
    }
    write_json(out_dir / "predict.json", info)
    page = write_page(out_dir, table, skipped, pictures, outputs)
    return {**info, "predictions": str(out_dir / "predictions.csv"), "page": str(page)}


def write_page(
    out_dir: Path,
    table: pd.DataFrame,
    skipped: list[dict[str, Any]],
    pictures: list[str],
    outputs: dict[str, Any],
) -> Path:
    """report.html: the patients' risks per model, sorted by the first model's, the thresholds that
    labelled them, the MLP's per-patient waterfalls and the skipped rows with their reasons. Returns
    the page's path."""
    thresholds = ", ".join(f"{kind} {info['threshold']:.3f}" for kind, info in outputs.items())
    page = out_dir / "report.html"
    html_page.write_report(
        page,
        "Heart disease: predictions for new patients",
        [
            html_page.paragraph(
                f"{len(table)} patients scored by every model of the run, sorted by the first "
                f"model's risk. Labels at each model's validation threshold ({thresholds})."
            ),
            html_page.paragraph("For research: not a medical device.", note=True),
            html_page.section(
                "Risks",
                html_page.table(
                    list(table.columns),
                    [
                        [html_page.fmt(v) for v in row]
                        for row in table.sort_values(table.columns[1], ascending=False).to_numpy(
                            dtype=object
                        )
                    ],
                ),
            ),
            html_page.section(
                "Per-patient SHAP values of the MLP (log-odds)",
                "".join(html_page.image(out_dir / name, name) for name in pictures),
            ),
            html_page.section(
                f"Skipped rows ({len(skipped)})",
                html_page.table(["line", "reason"], [[s["line"], s["reason"]] for s in skipped])
                if skipped
                else html_page.paragraph("none"),
            ),
        ],
    )
    return page


def print_summary(result: dict[str, Any]) -> None:
    """Prints what predict did: patients scored and skipped, the first rows of the predictions
    table, the first skip reasons and the page's path."""
    table = pd.read_csv(result["predictions"])
    print(f"{result['scored']} patients scored, {len(result['skipped'])} skipped")
    print(table.head(8).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for item in result["skipped"][:8]:
        print(f"  skipped {item['reason']}")
    print(f"Page: {result['page']}")
