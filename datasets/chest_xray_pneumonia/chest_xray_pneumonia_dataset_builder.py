"""chest_xray_pneumonia: the Kaggle "Chest X-Ray Images (Pneumonia)" folders (manual download)."""

from __future__ import annotations

import dataclasses
import io
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath
from PIL import Image

from datasets.chest_xray_pneumonia import file_names

# Kaggle folder -> TFDS split; a split exists when its folder does.
SPLIT_FOLDERS = dict(zip(file_names.SPLIT_FOLDERS, ("train", "validation", "test")))
CLASS_FOLDERS = file_names.CLASS_FOLDERS
# Where the Kaggle archive puts the splits when unzipped into the manual dir.
ARCHIVE_FOLDER = "chest_xray"
UNKNOWN_PATHOGEN = -1  # ClassLabel's "no label", for pneumonia files naming no pathogen


@dataclasses.dataclass(eq=False)
class ChestXrayConfig(tfds.core.BuilderConfig):
    """Which labels the examples carry."""

    label_names: tuple[str, ...] = CLASS_FOLDERS
    label_from_pathogen: bool = False  # False: the class folder; True: the file name's pathogen


def find_root(manual_dir: epath.Path) -> epath.Path:
    """The folder holding train/ (val/, test/): the manual dir itself or its chest_xray/."""
    for root in (manual_dir, manual_dir / ARCHIVE_FOLDER):
        if any((root / folder).is_dir() for folder in SPLIT_FOLDERS):
            return root
    raise FileNotFoundError(
        f"No {'/, '.join(SPLIT_FOLDERS)}/ folder in {manual_dir} or {manual_dir / ARCHIVE_FOLDER}. "
        f"{Builder.MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )


def read_grayscale(path: epath.Path) -> np.ndarray | None:
    """The image as uint8 (height, width, 1), or None (with a warning) when unreadable."""
    try:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            # Kaggle mixes grayscale and RGB JPEGs of the same grayscale content.
            pixels = np.asarray(image.convert("L"))
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        logging.warning("Skipping unreadable image %s: %s", path, error)
        return None
    return pixels[..., None]


def example_label(config: ChestXrayConfig, class_folder: str, pathogen: str) -> str | None:
    """The config's label of one file; None when it has none (pathogen-less pneumonia)."""
    if not config.label_from_pathogen:
        return class_folder
    return pathogen.upper() or None


class Builder(tfds.core.GeneratorBasedBuilder):
    """Pediatric chest X-rays: NORMAL / PNEUMONIA (bacterial or viral)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        ChestXrayConfig(
            name="binary",
            description="Label NORMAL or PNEUMONIA, from the class folder.",
        ),
        ChestXrayConfig(
            name="three_class",
            description=(
                "Label NORMAL, BACTERIA or VIRUS; pneumonia files naming neither are left out."
            ),
            label_names=("NORMAL", "BACTERIA", "VIRUS"),
            label_from_pathogen=True,
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Download "Chest X-Ray Images (Pneumonia)" from
    https://www.kaggle.com/datasets/paultimothymooney/chest-xray-pneumonia (the same images
    are on Mendeley Data, doi:10.17632/rscbjbr9sj.2) and unzip it into the manual dir
    (default `~/tensorflow_datasets/downloads/manual/`, or pass
    `download_config=tfds.download.DownloadConfig(manual_dir=...)`), so that it holds
    `chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`. A manual dir that holds
    `train/`, `val/`, `test/` directly works as well; missing split folders are skipped.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # Stored as JPEG like the sources: PNG would take several times the
                    # disk for what is already a JPEG (re-encoding at quality 95).
                    "image": tfds.features.Image(
                        shape=(None, None, 1), dtype=np.uint8, encoding_format="jpeg"
                    ),
                    "label": tfds.features.ClassLabel(names=list(self.builder_config.label_names)),
                    "pathogen": tfds.features.ClassLabel(names=list(file_names.PATHOGENS)),
                    "patient_id": tfds.features.Text(),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://www.kaggle.com/datasets/paultimothymooney/chest-xray-pneumonia",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = find_root(epath.Path(dl_manager.manual_dir))
        return {
            split: self._generate_examples(root, folder)
            for folder, split in SPLIT_FOLDERS.items()
            if (root / folder).is_dir()
        }

    def _generate_examples(self, root: epath.Path, folder: str) -> Iterator[tuple[str, dict]]:
        for class_folder in CLASS_FOLDERS:
            class_dir = root / folder / class_folder
            if not class_dir.is_dir():
                continue
            for path in sorted(class_dir.iterdir()):
                if file_names.is_hidden(path.name) or not file_names.has_image_suffix(path.name):
                    continue
                pathogen = file_names.pathogen(path.name, class_folder)
                label = example_label(self.builder_config, class_folder, pathogen)
                if label is None:
                    continue
                image = read_grayscale(path)
                if image is None:
                    continue
                # Relative key: stable across machines, unlike the manual dir's absolute path.
                yield (
                    f"{folder}/{class_folder}/{path.name}",
                    {
                        "image": image,
                        "label": label,
                        "pathogen": pathogen or UNKNOWN_PATHOGEN,
                        "patient_id": file_names.patient_id(path.name),
                        "file_name": path.name,
                    },
                )
