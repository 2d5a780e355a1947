"""chest_xray_pneumonia: the Kaggle chest X-ray folders as a TFDS builder.

Import `datasets.chest_xray_pneumonia.chest_xray_pneumonia_dataset_builder` to register
the builder. This package stays light on purpose: components import `file_names` from it
without paying for TensorFlow Datasets.
"""
