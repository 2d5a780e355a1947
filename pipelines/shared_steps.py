"""The steps `pipelines.pneumonia` and `pipelines.evaluate` build alike, from the same flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pipelines.cli import data_fingerprint
from pipelines.runner import Component


def example_gen_component(
    data_dir: str | None,
    csv: str | None,
    *,
    task: str,
    seed: int,
    balance: bool,
    external: str | None = None,
    near_duplicates: str = "report",
    calibration_dir: str | None = None,
    split_lists: str | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    progress: bool = False,
) -> Component:
    """ExampleGen on a Kaggle folder, an NIH-style CSV or (neither) the synthetic builder;
    the files' names, sizes and times key its cache. `external` ("test" or "all"):
    every image is a test image (pipelines.evaluate at a frozen threshold).
    `near_duplicates` ("report" or "remove"): the fate of val/test images that look like
    an earlier split's image; `calibration_dir`: a site's labelled images, the val split
    (pipelines.evaluate); `split_lists`: NIH's official split lists (--task multilabel);
    `val_fraction`, `test_fraction`: the patients held out where the data has no split."""
    from components.pneumonia import example_gen

    cache_key = {"data_fingerprint": data_fingerprint(data_dir, csv)}
    params: dict[str, Any] = dict(
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
        csv=str(Path(csv).resolve()) if csv else None,
        task=task,
        seed=seed,
        balance=balance,
        external=external,
        near_duplicates=near_duplicates,
    )
    if calibration_dir:  # only then, so earlier runs' fingerprints stay as they were
        params["calibration_dir"] = str(Path(calibration_dir).resolve())
        cache_key["calibration_fingerprint"] = data_fingerprint(calibration_dir, None)
    # Passed only when not ExampleGen's default, so earlier runs' fingerprints stay.
    defaults = {
        "val_fraction": example_gen.VAL_FRACTION,
        "test_fraction": example_gen.TEST_FRACTION,
    }
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if value is not None and value != defaults[name]:
            params[name] = value
    if split_lists:  # as calibration_dir: only then, and its files key the cache
        params["split_lists"] = str(Path(split_lists).resolve())
        cache_key["split_lists_fingerprint"] = data_fingerprint(split_lists, None)
    return Component(
        "example_gen",
        example_gen.run,
        params,
        cache_key=cache_key,
        display={"progress": progress},
        uses_tensorboard=False,
    )


def evaluator_component(
    *,
    threshold_rule: str,
    target_sensitivity: float,
    bootstrap: int,
    seed: int,
    run_flags: Mapping[str, Any],
    frozen_threshold: float | None = None,
    threshold_source: str | None = None,
    frozen_thresholds: Mapping[str, float] | None = None,
    site: Mapping[str, Any] | None = None,
) -> Component:
    """The Evaluator on the Transform's splits and the model in trainer/. `site`
    (pipelines.evaluate): reference_run for the shift report, and calibration_dir with
    site_name when a site recalibrates; `frozen_thresholds`: a multi-label model's."""
    from components.pneumonia import evaluator

    return Component(
        "evaluator",
        evaluator.run,
        dict(
            threshold_rule=threshold_rule,
            target_sensitivity=target_sensitivity,
            bootstrap_resamples=bootstrap,
            seed=seed,
            frozen_threshold=frozen_threshold,
            threshold_source=threshold_source,
            run_flags=dict(run_flags),
            # A multi-label model's, one per finding (only then: others keep their keys).
            **({"frozen_thresholds": dict(frozen_thresholds)} if frozen_thresholds else {}),
            **(site or {}),
        ),
        inputs={"examples": "example_gen", "transform": "transform", "trainer": "trainer"},
    )


def export_component() -> Component:
    """The exporter: the serving model, with decoding and the Evaluator's threshold in
    its graph."""
    from components.pneumonia import exporter

    return Component(
        "export",
        exporter.run,
        {},
        inputs={"transform": "transform", "trainer": "trainer", "evaluator": "evaluator"},
        uses_tensorboard=False,
    )
