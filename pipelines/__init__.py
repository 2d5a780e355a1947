"""Entry points (python -m pipelines.pneumonia / pipelines.heart) and the local runner.

Importing this package starts TensorFlow quietly, before any entry point imports it.
"""

import os
import sys


def _start_tensorflow_quietly() -> None:
    """Hides TensorFlow's C++ start-up lines (oneDNN, CUDA probing), unless the user set
    TF_CPP_MIN_LOG_LEVEL, in which case TensorFlow prints what that value lets through.

    TensorFlow 2.21 logs those lines before absl::InitializeLog, where TF_CPP_MIN_LOG_LEVEL
    does not reach them (each library copy prints them once), so the variable alone no
    longer hides them: stderr (file descriptor 2, where C++ writes) points to /dev/null
    while TensorFlow is imported and probes its devices, and is restored afterwards. An
    import error still surfaces: Python raises it once stderr is back.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # for what TensorFlow logs later
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe, while stderr is quiet
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_start_tensorflow_quietly()
