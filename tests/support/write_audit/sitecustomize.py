"""Records what this Python process writes below one folder (a test puts this folder on
PYTHONPATH of the process it watches; Python imports `sitecustomize` at start-up).

An audit hook (PEP 578) sees every file opened for writing and every rename, removal and
new folder made through Python, and the process's id, which TensorBoard's event-file
names carry for what TensorFlow's C++ writes; at exit the record goes to the JSON file
WRITE_AUDIT_LOG names. Watched: the folder WRITE_AUDIT_DIR names.
"""

import atexit
import json
import os
import sys

WATCHED = os.path.realpath(os.environ["WRITE_AUDIT_DIR"])
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
writes: list[str] = []


def inside(path: object) -> bool:
    if isinstance(path, int) or path is None:  # a file descriptor: opened earlier
        return False
    return os.path.realpath(os.fsdecode(path)).startswith(WATCHED + os.sep)


def record(event: str, args: tuple) -> None:
    if event == "open" and args[2] & WRITING and inside(args[0]):
        writes.append(f"open {args[0]}")
    elif event == "os.rename" and (inside(args[0]) or inside(args[1])):
        writes.append(f"rename {args[0]} -> {args[1]}")
    elif event in ("os.remove", "os.mkdir", "os.rmdir", "shutil.rmtree") and inside(args[0]):
        writes.append(f"{event} {args[0]}")


def save() -> None:
    with open(os.environ["WRITE_AUDIT_LOG"], "w") as out:
        json.dump({"pid": os.getpid(), "writes": writes}, out)


sys.addaudithook(record)
atexit.register(save)
