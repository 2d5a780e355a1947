"""Custom TFDS builders: chest_xray_pneumonia, synthetic_cxr, heart_failure.

Importing a builder's module registers it with TFDS (tfds.builder("synthetic_cxr")).
"""
