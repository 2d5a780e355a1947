"""The Kaggle chest X-ray layout and what its file names encode: patient id and pathogen.

The layout: <root>/<split folder>/<class folder>/<image file>, split folders train/,
val/ and test/ (each optional but train/), class folders NORMAL/ and PNEUMONIA/. Both
the TFDS builder and the pneumonia ExampleGen read it through this module.

File names: `person1946_bacteria_4874.jpeg` (patient person1946, bacterial),
`person1000_virus_1681.jpeg` (viral), `IM-0115-0001.jpeg` and
`NORMAL2-IM-1427-0001.jpeg` (normal; patient IM-0115 / NORMAL2-IM-1427; the last number
is the image index of that patient; some add a series number: IM-0629-0001-0003).
"""

from __future__ import annotations

import re
from pathlib import PurePath

PATHOGENS = ("normal", "bacteria", "virus")
SPLIT_FOLDERS = ("train", "val", "test")
CLASS_FOLDERS = ("NORMAL", "PNEUMONIA")
# What PIL and TensorFlow's decoder both read (the Kaggle download holds only .jpeg).
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".gif")

# personN_bacteria_* and personN_virus_* get one id, personN. They are probably different
# children (the trailing counter runs separately per pathogen, and 808 of train's 1,635
# person numbers carry both), but grouping them only makes the groups coarser when
# validation is split off train by patient: harmless, never a leak. The numbers restart
# in each split folder, so they name nobody across folders (ExampleGen scopes them).
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


def is_hidden(file_name: str) -> bool:
    """.DS_Store and the like: never images, never reported."""
    return PurePath(file_name).name.startswith(".")


def has_image_suffix(file_name: str) -> bool:
    """Whether the name ends in one of `IMAGE_SUFFIXES` (case ignored): the files a Kaggle folder
    scan reads as images."""
    return PurePath(file_name).suffix.lower() in IMAGE_SUFFIXES


def acquisition_batch(file_name: str) -> str:
    """The naming batch a Kaggle file belongs to: NORMAL2, IM or person.

    The public names carry the two batches of normal radiographs (`NORMAL2-IM-...` and
    `IM-...`) and the pneumonia cases (`person...`); the official test split holds them in
    other proportions than train, so metrics per batch show where errors gather. Names
    with none of these patterns give "other".
    """
    stem = PurePath(file_name).stem.upper()
    for prefix, batch in (("NORMAL2-", "NORMAL2"), ("IM-", "IM"), ("PERSON", "person")):
        if stem.startswith(prefix):
            return batch
    return "other"
