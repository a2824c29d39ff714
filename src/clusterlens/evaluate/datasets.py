"""Where the annotated data sets live (BSDS500, CamVid).

The data never lives inside the repository. It is found, in order, at the path given
explicitly, at ``$CLUSTERLENS_DATA``, or at ``../shared/data`` beside the project
checkout (the layout of this workplace).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "CLUSTERLENS_DATA"
_CHECKOUT_ROOT = Path(__file__).resolve().parents[3]


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    """Return the folder holding ``bsds500/`` and ``camvid/``, or None if none is found."""
    candidates = []
    if explicit is not None:
        candidates.append(Path(explicit))
    if os.environ.get(DATA_ENV):
        candidates.append(Path(os.environ[DATA_ENV]))
    candidates.append(_CHECKOUT_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def dataset_dir(name: str, explicit: str | os.PathLike | None = None) -> Path:
    """Return ``<data root>/<name>`` or raise a FileNotFoundError that says where it looked."""
    root = data_root(explicit)
    if root is None or not (root / name).is_dir():
        looked = explicit or os.environ.get(DATA_ENV) or _CHECKOUT_ROOT.parent / "shared" / "data"
        raise FileNotFoundError(
            f"data set {name!r} not found (looked in {looked}); pass its parent folder "
            f"explicitly or set ${DATA_ENV} to the folder that holds {name}/"
        )
    return root / name
