"""Reading a run's TensorBoard event files the way TensorBoard does."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def image_tags(tensorboard_dir: Path) -> set[str]:
    """Every image-summary tag in every event folder below `tensorboard_dir`."""
    tags: set[str] = set()
    folders = {p.parent for p in tensorboard_dir.rglob("events.out.tfevents.*")}
    for folder in folders:
        accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("tensors", []):
            plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
            if plugin == "images":
                tags.add(f"{folder.relative_to(tensorboard_dir)}/{tag}")
        tags.update(
            f"{folder.relative_to(tensorboard_dir)}/{t}"
            for t in accumulator.Tags().get("images", [])
        )
    return tags
