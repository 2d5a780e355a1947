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
    progress: bool = False,
) -> Component:
    """ExampleGen on a Kaggle folder, an NIH-style CSV or (neither) the synthetic builder;
    the files' names, sizes and times key its cache. `external` ("test" or "all"):
    every image is a test image (pipelines.evaluate at a frozen threshold).
    `near_duplicates` ("report" or "remove"): the fate of val/test images that look like
    an earlier split's image."""
    from components.pneumonia import example_gen

    return Component(
        "example_gen",
        example_gen.run,
        dict(
            data_dir=str(Path(data_dir).resolve()) if data_dir else None,
            csv=str(Path(csv).resolve()) if csv else None,
            task=task,
            seed=seed,
            balance=balance,
            external=external,
            near_duplicates=near_duplicates,
        ),
        cache_key={"data_fingerprint": data_fingerprint(data_dir, csv)},
        display={"progress": progress},
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
) -> Component:
    """The Evaluator on the Transform's splits and the model in trainer/."""
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
        ),
        inputs={"examples": "example_gen", "transform": "transform", "trainer": "trainer"},
    )
