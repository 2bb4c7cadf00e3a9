"""Atomic file writes: nothing the user wrote is left half-written."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; move it into place only on success.

    The temporary file keeps the target's extension, so writers that pick a format
    from the suffix (Keras, matplotlib, PIL) behave as for the real path.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _, dot, ext = os.path.basename(path).partition(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=dot + ext)
    os.close(fd)
    os.remove(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    """Write `text` to `path` atomically (temp file in the same folder + os.replace)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    return path
