"""Write a file so that no reader, and no interrupt, ever sees half of it.

The content goes to a temporary file beside the target (same folder, so the same file
system), is flushed to disk, and then replaces the target in one ``os.replace``: a
kill at any moment leaves either the old file or the new one. Temporary names are
unique, so two writers never share one; a failed write removes its temporary file.

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> write_text_atomically(target, '{"epoch": 3}')
    >>> target.read_text()
    '{"epoch": 3}'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the result onto ``path`` in one step.

    Args:
        path: the file to create or replace.
        write: writes the whole content to the path it is given (e.g.
            ``lambda tmp: torch.save(state, tmp)``).
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it visible
        os.chmod(temporary, _mode_for(path))  # mkstemp's file is private (0600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what a plain ``open`` would give a new file."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see the module note)."""
    replace_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module note)."""
    replace_atomically(path, lambda temporary: temporary.write_bytes(data))
