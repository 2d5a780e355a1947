"""synthetic_cxr: phantom chest X-rays with lesion masks (importing registers the builder)."""

from datasets.synthetic_cxr.synthetic_cxr_dataset_builder import Builder

__all__ = ["Builder"]
