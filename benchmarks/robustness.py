"""Runs the whole bad-input corpus (benchmarks/bad_inputs.py) through both pipelines' command
lines, plus the SIGKILL interruption trials, and prints one line:

    robustness: N bad inputs tried (P pneumonia, H heart), N handled as designed,
    0 crashes, 0 wrong; interruption trials survived 3/3; ...

A crash is a traceback or an unexpected exit code; "wrong" is a run that ended but not
as designed (an item neither used nor listed, a wrong message, a silently wrong decode).
Every pneumonia case runs the full pipeline (--image_size 32 --epochs 1 --bootstrap 50
--explain gradcam) or stops at its error line; heart cases run with --models lasso.
Takes 6-9 minutes on 2 shared CPU cores; `--quick` checks the pneumonia cases that do not
stop the run through ExampleGen and Transform only (about 2 minutes).

    python -m benchmarks.robustness [--quick] [--keep DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.bad_inputs import (  # noqa: E402
    CASES,
    Verdict,
    drive_subprocess,
    interruption_trials,
    run_components,
)


def run_corpus(workdir: Path, quick: bool) -> list[Verdict]:
    verdicts: list[Verdict] = []
    pneumonia = [c for c in CASES if c.pipeline == "pneumonia"]
    if quick:
        in_process = [c for c in pneumonia if c.outcome != "error" and not c.cli_only]
        for case in in_process:
            try:
                verdicts.append(run_components(case, workdir / "components" / case.name))
            except Exception as error:  # a crash of the components themselves
                verdicts.append(Verdict(case.name, "crash", f"{type(error).__name__}: {error}"))
        pneumonia = [c for c in pneumonia if c not in in_process]
    for pipeline, cases in (
        ("pneumonia", pneumonia),
        ("heart", [c for c in CASES if c.pipeline == "heart"]),
    ):
        results = drive_subprocess(pipeline, workdir / pipeline, [c.name for c in cases])
        verdicts += [results[c.name] for c in cases]
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="pneumonia cases that do not stop the run: components only",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="robustness-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        corpus = run_corpus(workdir / "corpus", args.quick)
        trials = interruption_trials(
            workdir / "interruption", log=print if args.verbose else (lambda line: None)
        )
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for verdict in corpus + trials:
        if args.verbose or not verdict.ok:
            print(f"  {verdict.status:11s} {verdict.case}: {verdict.detail[:200]}")
    counts = {
        status: sum(v.status == status for v in corpus)
        for status in ("as_designed", "wrong", "crash")
    }
    n_pneumonia = sum(c.pipeline == "pneumonia" for c in CASES)
    survived = sum(t.ok for t in trials)
    print(
        f"robustness: {len(corpus)} bad inputs tried ({n_pneumonia} pneumonia, "
        f"{len(corpus) - n_pneumonia} heart), {counts['as_designed']} handled as designed, "
        f"{counts['crash']} crashes, {counts['wrong']} wrong; interruption trials survived "
        f"{survived}/{len(trials)} (SIGKILL during ExampleGen, mid-epoch, during the "
        f"Explainer); {time.perf_counter() - start:.0f} s"
    )
    return 0 if counts["crash"] == counts["wrong"] == 0 and survived == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
