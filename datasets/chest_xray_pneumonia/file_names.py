"""What the Kaggle chest X-ray file names encode: patient id and pathogen.

Examples: `person1946_bacteria_4874.jpeg` (patient person1946, bacterial),
`person1000_virus_1681.jpeg` (viral), `IM-0115-0001.jpeg` and
`NORMAL2-IM-1427-0001.jpeg` (normal; patient IM-0115 / NORMAL2-IM-1427; the last number
is the image index of that patient; some add a series number: IM-0629-0001-0003).
"""
from __future__ import annotations

import re
from pathlib import PurePath

PATHOGENS = ("normal", "bacteria", "virus")

_PERSON = re.compile(r"^(person\d+)_(bacteria|virus)(?:_\d+)+$", re.IGNORECASE)
_IM = re.compile(r"^((?:NORMAL\d*-)?IM-\d+)(?:-\d+)+$", re.IGNORECASE)


def patient_id(file_name: str) -> str:
    """The patient a Kaggle file belongs to; the file's stem when the name has no pattern."""
    stem = PurePath(file_name).stem
    for pattern in (_PERSON, _IM):
        match = pattern.match(stem)
        if match:
            return match.group(1)
    return stem


def pathogen(file_name: str, label: str) -> str:
    """normal / bacteria / virus: from the class folder for NORMAL, else the file name.

    Pneumonia files whose name says neither bacteria nor virus return "" (unknown).
    """
    if label.upper() == "NORMAL":
        return "normal"
    stem = PurePath(file_name).stem.lower()
    if "bacteria" in stem:
        return "bacteria"
    if "virus" in stem:
        return "virus"
    return ""
