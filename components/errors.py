"""The one exception type for problems with the user's data or flags.

Entry points catch it and print its message as a single line (no traceback) with a
non-zero exit; anything else is a bug and keeps its traceback.
"""


class DataError(Exception):
    """Bad input: a missing folder, an empty split, a CSV without required columns."""
