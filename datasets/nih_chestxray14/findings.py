"""What an NIH ChestX-ray14 label string says: `|`-separated findings from a fixed vocabulary.

For pneumonia: "Pneumonia" among the findings -> PNEUMONIA, exactly "No Finding" ->
NORMAL, anything else -> no label for this task. For `--task multilabel`: the findings
themselves, "No Finding" being none of them (`multilabel_findings`), and a string that is
no NIH finding a DataError. The pneumonia ExampleGen reads `--csv` files through it.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Sequence

import numpy as np

from components.errors import DataError

# The NIH ChestX-ray14 vocabulary; matched ignoring case and surrounding spaces.
NIH_FINDINGS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
    "No Finding",
)
_FINDING_BY_KEY = {name.lower(): name for name in NIH_FINDINGS}


def nih_label(findings: str) -> tuple[str, list[str]]:
    """(PNEUMONIA | NORMAL | "" for other findings, the strings that are no NIH finding)."""
    items = [item.strip() for item in findings.split("|")]
    known = {_FINDING_BY_KEY[item.lower()] for item in items if item.lower() in _FINDING_BY_KEY}
    unknown = [item for item in items if item.lower() not in _FINDING_BY_KEY]
    if "Pneumonia" in known:
        return "PNEUMONIA", unknown
    if known == {"No Finding"} and not unknown:
        return "NORMAL", unknown
    return "", unknown


NO_FINDING = "No Finding"
# The fourteen findings a multi-label model can have a sigmoid for, in NIH's order above.
MULTILABEL_FINDINGS = tuple(name for name in NIH_FINDINGS if name != NO_FINDING)


def multilabel_findings(findings: str) -> tuple[str, ...]:
    """The NIH findings of a label string, sorted, in NIH's spelling; () for "No Finding".

    A string that is no NIH finding, "No Finding" beside a finding, or an empty string is
    a DataError naming it: a multi-label target must say every finding, so a row cannot
    be kept with part of its label ignored.
    """
    items = [item.strip() for item in str(findings).split("|")]
    unknown = [item for item in items if item.lower() not in _FINDING_BY_KEY]
    if unknown:
        shown = repr(unknown[0]) if unknown[0] else "an empty finding"
        raise DataError(
            f"unknown finding {shown} in label {findings!r} (expected NIH findings such as "
            f"{', '.join(MULTILABEL_FINDINGS[:3])} or {NO_FINDING}, separated by |)"
        )
    known = sorted({_FINDING_BY_KEY[item.lower()] for item in items})
    if NO_FINDING in known and len(known) > 1:
        raise DataError(f"label {findings!r} says {NO_FINDING} beside a finding")
    return () if known == [NO_FINDING] else tuple(known)


def finding_string(findings: Sequence[str]) -> str:
    """The label string of a set of findings: "Effusion|Mass", or "No Finding" for none."""
    return "|".join(sorted(findings)) if findings else NO_FINDING


def multi_hot(labels: Sequence[str], findings: Sequence[str]) -> np.ndarray:
    """(n, len(findings)) int32: 1 where label string i names finding j. Labels are
    examples.csv's canonical strings (`finding_string`); -1 rows for empty labels (an
    unlabelled image)."""
    index = {name: j for j, name in enumerate(findings)}
    target = np.zeros((len(labels), len(findings)), dtype=np.int32)
    for i, label in enumerate(labels):
        if not label:
            target[i] = -1
            continue
        for name in multilabel_findings(label):
            if name in index:  # a finding the model has no unit for counts as absent
                target[i, index[name]] = 1
    return target


def parse_lesion_masks(value: str) -> dict[str, str]:
    """`Finding:path|Finding:path` (a `lesion_masks` cell) -> {finding: path}; {} if empty.

    Synthetic multi-label phantoms know a lesion mask per finding
    (datasets/synthetic_cxr/multilabel.py); real NIH rows have none."""
    masks: dict[str, str] = {}
    for item in filter(None, str(value).split("|")):
        name, _, path = item.partition(":")
        found = multilabel_findings(name)
        if not path or len(found) != 1:
            raise DataError(f"lesion_masks item {item!r} is not Finding:path")
        masks[found[0]] = path
    return masks


# NIH ChestX-ray14 file names: <8-digit patient>_<3-digit follow-up>.png (00000001_000.png).
_NIH_FILE = re.compile(r"^(\d{8})_\d{3}$")


def patient_from_file_name(file_name: str) -> str | None:
    """The patient an NIH file name carries ("00000001" for 00000001_002.png), or None."""
    match = _NIH_FILE.match(PurePath(file_name).stem)
    return match.group(1) if match else None
