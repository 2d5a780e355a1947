"""nih_chestxray14: the NIH ChestX-ray14 label vocabulary (read from a CSV; no TFDS builder)."""
