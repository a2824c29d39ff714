"""One browser session's state: the per-image contexts it has built.

Gradio keeps a ``gr.State`` value per browser session, so everything here lives in an
:class:`AppSession` held by that state and never in a module global: two sessions
never share a context (and so never see each other's images or timings).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusterlens.context import ImageContext

#: Contexts kept per session: a 1024^2 context holds the image, its ways of knowing and
#: the model's class probabilities (tens of MB), so older images are dropped.
MAX_CONTEXTS = 3
#: What the image picker shows for the bundled sample and for an upload.
SAMPLE_CHOICE = "sample: cameraman"
UPLOAD_CHOICE = "uploaded file"


@dataclass
class ImageSources:
    """Where images may come from: an upload, the bundled sample, or files under
    ``--images`` (only those listed at start-up can be opened by name)."""

    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def scan(cls, folder: str | Path | None) -> ImageSources:
        """List the image files directly under ``folder`` (none without a folder)."""
        if folder is None:
            return cls()
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"--images: {folder} is not a folder")
        suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
        files = {
            path.name: path
            for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix.lower() in suffixes
        }
        return cls(folder, files)

    @property
    def choices(self) -> list[str]:
        return [UPLOAD_CHOICE, SAMPLE_CHOICE, *self.files]


@dataclass
class AppSession:
    """The contexts one browser session has made, newest last (at most MAX_CONTEXTS)."""

    contexts: OrderedDict[tuple[str, str], ImageContext] = field(default_factory=OrderedDict)
    #: each side's last accounting ("A", "B"), so re-rendering one side keeps the other's
    accounting: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: each kept context's image at display size, by id(context) (see handlers.shown_image)
    pictures: dict[int, Any] = field(default_factory=dict)
    #: held by every handler of this session: re-renders skip Gradio's queue, so one
    #: could otherwise run while the same session's full allocation is half done
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def context(self, key: tuple[str, str], image: Any) -> tuple[ImageContext, bool]:
        """The context stored under ``key``, made from ``image`` (a path or pixels, or a
        function returning them) the first time; and whether it was made now."""
        if key in self.contexts:
            self.contexts.move_to_end(key)
            return self.contexts[key], False
        pixels = image() if callable(image) else image
        context = ImageContext.of(pixels)
        self.contexts[key] = context
        while len(self.contexts) > MAX_CONTEXTS:
            self.contexts.popitem(last=False)
        return context, True
