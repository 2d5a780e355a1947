"""What an NIH ChestX-ray14 label string says: `|`-separated findings from a fixed vocabulary.

For pneumonia: "Pneumonia" among the findings -> PNEUMONIA, exactly "No Finding" ->
NORMAL, anything else -> no label for this task. The pneumonia ExampleGen reads `--csv`
files through it.
"""

from __future__ import annotations

import re
from pathlib import PurePath

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


# NIH ChestX-ray14 file names: <8-digit patient>_<3-digit follow-up>.png (00000001_000.png).
_NIH_FILE = re.compile(r"^(\d{8})_\d{3}$")


def patient_from_file_name(file_name: str) -> str | None:
    """The patient an NIH file name carries ("00000001" for 00000001_002.png), or None."""
    match = _NIH_FILE.match(PurePath(file_name).stem)
    return match.group(1) if match else None
