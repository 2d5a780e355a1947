"""Multi-label phantoms written as an NIH-style folder: images/, masks/ and labels.csv.

`pipelines.pneumonia --csv <folder>/labels.csv --task multilabel` reads it like NIH's
ChestX-ray14 CSV; its `lesion_masks` column (`Finding:masks/<file>|...`) gives the
Explainer each finding's own lesion mask, so a map made for one finding can be checked
against that finding's lesion. The binary synthetic_cxr builder is not involved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from datasets.nih_chestxray14.findings import finding_string
from datasets.synthetic_cxr.phantom import MULTILABEL_FINDINGS, make_multilabel_phantom

# Each finding is present in a phantom with this probability, independently.
PREVALENCE = 0.4


def phantom_findings(count: int, seed: int) -> list[tuple[str, ...]]:
    """Which findings each of `count` phantoms shows, seeded: each independently with
    PREVALENCE (so some show none, some several)."""
    present = np.random.default_rng(seed).random((count, len(MULTILABEL_FINDINGS))) < PREVALENCE
    return [tuple(np.asarray(MULTILABEL_FINDINGS)[row].tolist()) for row in present]


def write_multilabel_folder(root: Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """`count` phantoms (one a patient) at `size` px under `root`; returns labels.csv."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    rows = []
    for index, findings in enumerate(phantom_findings(count, seed)):
        image, masks = make_multilabel_phantom(seed * 1_000_003 + index, findings, size)
        name = f"phantom_{index:05d}"
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        mask_cells = []
        for finding, mask in masks.items():
            mask_file = f"masks/{name}_{finding}.png"
            Image.fromarray(mask * 255).save(root / mask_file)
            mask_cells.append(f"{finding}:{mask_file}")
        rows.append(
            {
                "image_path": f"images/{name}.png",
                "label": finding_string(findings),
                "patient_id": f"P{index:05d}",
                "lesion_masks": "|".join(mask_cells),
            }
        )
    csv_path = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    return csv_path
