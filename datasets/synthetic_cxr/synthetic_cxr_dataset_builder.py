"""synthetic_cxr: generated phantom chest radiographs with known pneumonia masks."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from datasets.synthetic_cxr import phantom

IMAGE_SIZE = 128
SPLIT_SIZES = {"train": 600, "validation": 150, "test": 150}
NORMAL_FRACTION = 0.4  # the Kaggle chest X-ray set is roughly 40% normal at test time
LABELS = ("NORMAL", "PNEUMONIA")
BASE_SEED = 20_180_222  # fixed, so every machine generates the same dataset
# Fixed split codes: Python's hash() of a string changes between interpreter runs.
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass(frozen=True)
class ExampleSpec:
    """Everything needed to render one example."""

    split: str
    index: int
    seed: int
    pneumonia: bool

    @property
    def patient_id(self) -> str:
        """`synth-<split>-<index>`: one phantom, one patient."""
        return f"synth-{self.split}-{self.index:05d}"

    @property
    def file_name(self) -> str:
        """The exported PNG's name: the patient id."""
        return f"{self.patient_id}.png"

    @property
    def label(self) -> str:
        """NORMAL or PNEUMONIA."""
        return LABELS[int(self.pneumonia)]


def example_seed(split: str, index: int) -> int:
    """Phantom seed of example `index` of `split`, independent of every other example."""
    entropy = (BASE_SEED, _SPLIT_CODES[split], index)
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def example_specs(split: str, num_examples: int) -> list[ExampleSpec]:
    """Seeds and labels of a split; exactly NORMAL_FRACTION normal, in a seeded order."""
    num_normal = round(num_examples * NORMAL_FRACTION)
    # A seeded permutation (not a coin per example) gives exact class counts per split.
    rank = np.random.default_rng((BASE_SEED, _SPLIT_CODES[split])).permutation(num_examples)
    return [
        ExampleSpec(split, index, example_seed(split, index), bool(rank[index] >= num_normal))
        for index in range(num_examples)
    ]


def render(spec: ExampleSpec) -> tuple[np.ndarray, np.ndarray]:
    """(image, mask), both uint8 (IMAGE_SIZE, IMAGE_SIZE, 1)."""
    image, mask = phantom.make_phantom(spec.seed, spec.pneumonia, IMAGE_SIZE)
    return image[..., None], mask[..., None]


class Builder(tfds.core.GeneratorBasedBuilder):
    """Phantom chest X-rays: NORMAL or PNEUMONIA with 1-3 opacities and their masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        shape = (IMAGE_SIZE, IMAGE_SIZE, 1)
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=shape, dtype=np.uint8),
                    # An Image (lossless PNG) rather than a Tensor: a mostly-zero 0/1 mask
                    # compresses to a few hundred bytes instead of 16 KB raw, and image tools
                    # (tfds.show_examples, TensorBoard) can display it next to the radiograph.
                    "mask": tfds.features.Image(shape=shape, dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=list(LABELS)),
                    "patient_id": tfds.features.Text(),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # everything is generated; nothing to download
        return {split: self._generate_examples(split, size) for split, size in SPLIT_SIZES.items()}

    def _generate_examples(self, split: str, num_examples: int) -> Iterator[tuple[str, dict]]:
        for spec in example_specs(split, num_examples):
            image, mask = render(spec)
            yield (
                spec.file_name,
                {
                    "image": image,
                    "mask": mask,
                    "label": spec.label,
                    "patient_id": spec.patient_id,
                    "file_name": spec.file_name,
                },
            )
