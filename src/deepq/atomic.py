"""Files written whole or not at all: a temporary file in the same directory, fsynced, then
renamed over the final name, so a kill at any moment leaves the old file or the new one.
Plain Python (no JAX), so that light processes such as the curve plotter import it fast."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# Read once at import: os.umask can only be read by setting it, which would race with
# threads creating files (XLA's compilation cache writes from its compile thread).
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """`write(f)` fills a temporary file that then replaces `path` in one rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide run files from others
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_savefig(fig: Any, out: Path, **kwargs: Any) -> Path:
    """A matplotlib figure written as `out`'s format, atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(out).suffix[1:].lower(), **kwargs)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)
