"""Tests for file_names on the Kaggle name patterns its docstring lists."""

from __future__ import annotations

import pytest

from datasets.chest_xray_pneumonia import file_names


@pytest.mark.parametrize(
    "name,patient",
    [
        ("person1946_bacteria_4874.jpeg", "person1946"),
        ("person1000_virus_1681.jpeg", "person1000"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
        # Some patients have several series: IM-<patient>-<series>-<image>.
        ("IM-0629-0001-0003.jpeg", "IM-0629"),
        ("NORMAL2-IM-1094-0001-0002.jpeg", "NORMAL2-IM-1094"),
        ("person447_virus_921_1.jpeg", "person447"),
        ("train/PNEUMONIA/person1946_bacteria_4874.jpeg", "person1946"),  # paths work too
        ("scan_without_pattern.png", "scan_without_pattern"),  # falls back to the stem
    ],
)
def test_patient_id(name: str, patient: str) -> None:
    assert file_names.patient_id(name) == patient


def test_images_of_one_patient_share_the_id() -> None:
    assert file_names.patient_id("IM-0115-0001.jpeg") == file_names.patient_id("IM-0115-0002.jpeg")
    assert file_names.patient_id("IM-0115-0001.jpeg") != file_names.patient_id("IM-0117-0001.jpeg")


@pytest.mark.parametrize(
    "name,label,pathogen",
    [
        ("person1946_bacteria_4874.jpeg", "PNEUMONIA", "bacteria"),
        ("person1000_virus_1681.jpeg", "PNEUMONIA", "virus"),
        ("IM-0115-0001.jpeg", "NORMAL", "normal"),
        ("NORMAL2-IM-1427-0001.jpeg", "normal", "normal"),
        ("person5_pneumonia_2.jpeg", "PNEUMONIA", ""),  # names neither: unknown
    ],
)
def test_pathogen(name: str, label: str, pathogen: str) -> None:
    assert file_names.pathogen(name, label) == pathogen
