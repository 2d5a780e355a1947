"""DICOM through pydicom: the display chain, what is refused and why, and ExampleGen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from components.images import check_image, decode_file
from components.pneumonia.example_gen import run as example_gen
from tests.support.dicom_files import write_dicom

RAMP = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))


def decoded(path) -> np.ndarray:
    return decode_file(tf.constant(str(path)), 32).numpy()[..., 0].astype(int)


@pytest.fixture
def png_ramp(tmp_path):
    path = tmp_path / "ramp.png"
    Image.fromarray(RAMP).save(path)
    return decoded(path)


@pytest.mark.parametrize(
    "kind", ["monochrome2", "monochrome1", "window_12_bit", "rescaled_16_bit", "window_16_bit"]
)
def test_dicom_decodes_to_the_same_pixels_as_the_png(tmp_path, png_ramp, kind):
    path = tmp_path / f"{kind}.dcm"
    if kind == "monochrome2":
        write_dicom(path, RAMP)
    elif kind == "monochrome1":  # stored inverted: bright means less dense
        write_dicom(path, 255 - RAMP, photometric="MONOCHROME1")
    elif kind == "window_12_bit":  # 0..4080 in 12 of 16 bits, window over exactly that
        write_dicom(path, RAMP.astype(np.uint16) * 16, bits_stored=12, window=(2040.5, 4081))
    elif kind == "rescaled_16_bit":  # a CT-like intercept shifts values, not the display
        write_dicom(path, RAMP.astype(np.uint16) * 257, rescale=(1.0, -1024.0))
    else:  # a window on a 16-bit image: values outside it clip to black and white
        stored = 1000 + RAMP.astype(np.uint16) * 4
        write_dicom(path, stored, window=(1000 + 510 + 0.5, 1021))
    assert check_image(path) is None
    assert np.abs(decoded(path) - png_ramp).max() <= 1


def test_window_clips_outside_values(tmp_path):
    stored = np.zeros((40, 40), np.uint16)
    stored[:, 20:] = 4000
    path = write_dicom(tmp_path / "w.dcm", stored, window=(2000, 100))  # 1950..2050
    image = decoded(path)
    assert image[:, :8].max() == 0 and image[:, -8:].min() == 255


def test_multi_frame_and_undecodable_compression_are_refused_with_a_reason(tmp_path):
    multi = write_dicom(tmp_path / "cine.dcm", np.stack([RAMP, RAMP]), frames=2)
    assert "multi-frame DICOM (2 frames)" in check_image(multi)
    j2k = write_dicom(tmp_path / "j2k.dcm", RAMP, jpeg2000_payload=True)
    reason = check_image(j2k)
    assert "JPEG 2000" in reason and "pip install pylibjpeg pylibjpeg-openjpeg" in reason
    no_pixels = tmp_path / "report.dcm"
    write_dicom(no_pixels, RAMP)
    import pydicom

    ds = pydicom.dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(no_pixels)
    assert "without pixel data" in check_image(no_pixels)


def test_example_gen_reads_dicom_files_in_class_folders(tmp_path):
    data = tmp_path / "data"
    for split in ("train", "test"):
        for label in ("NORMAL", "PNEUMONIA"):
            folder = data / split / label
            folder.mkdir(parents=True)
            for k in range(6):
                name = f"person{k}_bacteria_{k}" if label == "PNEUMONIA" else f"IM-{k:04d}-0001"
                # DICOM files often have no suffix: the DICM marker is what counts.
                write_dicom(folder / (f"{split}{name}" + ("" if k % 2 else ".dcm")), RAMP)
    write_dicom(data / "test" / "NORMAL" / "cine.dcm", np.stack([RAMP, RAMP]), frames=2)
    out = tmp_path / "example_gen"
    out.mkdir()
    example_gen(out, data_dir=str(data), seed=0, val_fraction=0.34)
    examples = pd.read_csv(out / "examples.csv")
    assert len(examples) == 24
    stats = pd.read_json(out / "stats.json", typ="series")
    assert any("multi-frame" in item["reason"] for item in stats["skipped"])
