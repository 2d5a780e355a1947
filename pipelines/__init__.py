"""Entry points (python -m pipelines.pneumonia / pipelines.heart) and the local runner."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) hides our own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
