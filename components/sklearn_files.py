"""scikit-learn objects on disk as skops files, loaded only with an explicit trusted list.

A joblib (pickle) file runs whatever code it holds when it is loaded, so opening a run
folder someone else made could execute anything; the Keras models already load in safe
mode. skops.io writes its own format (a zip of JSON and arrays) and, when loading,
refuses every type that is neither scikit-learn's or numpy's own nor on the list below.
A file that is not a skops file, or names a type off the list, is refused with one line
(DataError) before anything in it is built.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import skops.io as sio

from components.artifacts import atomic_path
from components.errors import DataError

SUFFIX = ".skops"
# Types our heart preprocessors and models hold beyond skops' defaults, and nothing else:
# the zeros-as-missing function of the schema, the one-hot encoder's dtype, and the
# Lasso's cross-validation splitter.
TRUSTED = (
    "datasets.heart_failure.schema.zeros_as_missing",
    "numpy.dtype",
    "sklearn.model_selection._split.StratifiedKFold",
)
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def save(obj: Any, path: Path) -> None:
    """Writes `obj` to `path` (a .skops file), atomically."""
    with atomic_path(path) as tmp:
        sio.dump(obj, tmp)


def load(path: Path) -> Any:
    """The object in a skops file written by `save`; DataError if it is anything else.

    A pickle where the skops file should be (a run folder from an older version, or a
    planted file) is refused, not opened.
    """
    path = Path(path)
    if not path.exists():
        pickles = [p for p in (path.with_suffix(s) for s in PICKLE_SUFFIXES) if p.exists()]
        if pickles:
            raise DataError(
                f"{pickles[0]} is a pickle, which could run code when loaded: refusing it "
                f"(this version saves {path.name}; rerun the run with --force)"
            )
        raise DataError(f"{path} is missing")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise DataError(f"{path} is not a skops file ({error}): refusing to load it") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED))
    if unexpected:
        raise DataError(f"{path} holds untrusted type(s) {', '.join(unexpected)}: refusing it")
    try:
        return sio.load(path, trusted=list(TRUSTED))
    except Exception as error:  # skops raises many kinds on a malformed file
        raise DataError(f"{path} could not be read as a skops file: {error}") from None
