"""TFDS builder for the Heart Failure Prediction table (918 patients, 11 clinical features)."""
