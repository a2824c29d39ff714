"""Loading checkpoints a user may hand us, without letting them run code.

``torch.load(..., weights_only=True)`` unpickles only tensors, numbers, strings and
plain containers. Every checkpoint this project writes holds nothing else, so no
extra safe globals are registered: a file that refers to any other object (which
unpickling could use to run code) is refused, and a file that is not a readable torch
checkpoint gets one line saying so instead of torch's paragraphs (which suggest
turning the safety check off, exactly what must not be done).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch


def load_checkpoint(path: str | Path, what: str, hint: str = "", device: str = "cpu") -> Any:
    """``torch.load`` with ``weights_only=True`` and one-line errors.

    Args:
        path: the file.
        what: how messages name it, e.g. "flow checkpoint".
        hint: what the user can do, appended to messages (e.g. "delete it or use another
            --out").
        device: ``map_location``.

    Raises:
        ValueError: the file refers to an object other than tensors and plain containers
            (named in the message), or is truncated, empty or not a torch file.
    """
    suffix = f"; {hint}" if hint else ""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names a refused object "GLOBAL module.name"; other unpickling errors are
        # files that are not torch checkpoints at all
        blocked = re.search(r"GLOBAL ([\w.]+)", str(err))
        if blocked is None:
            raise _unreadable(path, what, err, suffix) from err
        raise ValueError(
            f"refused to load the {what} {path}: it refers to {blocked.group(1)}, which is "
            f"not a tensor or plain container, and unpickling it could run code{suffix}"
        ) from err
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, KeyError) as err:
        raise _unreadable(path, what, err, suffix) from err


def _unreadable(path: str | Path, what: str, err: BaseException, suffix: str) -> ValueError:
    # torch's own messages run to paragraphs (and suggest disabling the check): keep the
    # first sentence, or just the exception type when it says nothing useful
    text = str(err).strip()
    if not text or "Weights only load failed" in text or isinstance(err, KeyError):
        detail = type(err).__name__
    else:
        detail = text.splitlines()[0].split(". ")[0][:160]
    return ValueError(
        f"the {what} {path} is not a readable torch checkpoint (truncated, or not written "
        f"by torch.save: {detail}){suffix}"
    )
