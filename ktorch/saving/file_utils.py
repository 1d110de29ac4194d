"""File helpers shared by the savers: atomic writes and overwrite confirmation."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


def _fsync_dir(directory: str) -> None:
    # The rename is durable only once the directory entry is on disk; not every platform can
    # open a directory, in which case the rename stays as durable as the OS makes it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(filepath: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `filepath`; on success it replaces `filepath` atomically.

    The temporary file lives in the target's folder (so the final rename never crosses file
    systems), is fsynced before the rename, and is removed if the body raises: a crash or an
    error mid-write leaves any previous `filepath` untouched.

    Args:
        filepath: the final path.

    Yields:
        The temporary path to write to (the file exists, empty).

    Example:
        ```python
        with atomic_write("model.keras") as tmp:
            write_zip(tmp)
        ```
    """
    filepath = os.fspath(filepath)
    directory = os.path.dirname(os.path.abspath(filepath)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(filepath)}.", suffix=".tmp", dir=directory
    )
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


def ask_to_proceed_with_overwrite(filepath: str) -> bool:
    """Asks on the terminal whether to overwrite `filepath`; returns the answer."""
    answer = input(f"[WARNING] {filepath} exists - overwrite? [y/n] ").strip().lower()
    while answer not in ("y", "n"):
        answer = input('Enter "y" (overwrite) or "n" (cancel). ').strip().lower()
    return answer == "y"


def may_write(filepath: str | os.PathLike, overwrite: bool) -> bool:
    """Whether a save to `filepath` should go ahead (asks when it exists and not `overwrite`)."""
    filepath = os.fspath(filepath)
    if overwrite or not os.path.exists(filepath):
        return True
    return ask_to_proceed_with_overwrite(filepath)
