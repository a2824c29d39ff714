"""One registry for every model clusterlens loads: ``"<source>:<spec>"`` -> loader.

A model name carries its source as a prefix, timm-style: ``offline:camvid``,
``sentence:all-MiniLM-L6-v2``; later ``open_clip:ViT-B-16/laion2b_s34b_b88k``,
``hf:openai/clip-vit-base-patch16``, ``yolo:camvid``, ``sam2:/path/to.pt``.
Adding a source is one call to :func:`register_loader` with a function that turns the
part after the colon into a model, and optionally one that lists known specs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Loader = Callable[..., Any]


class UnknownModelError(ValueError):
    """The model name has no registered source prefix or names no known model."""


class ModelNotFoundError(FileNotFoundError):
    """The model is known but its weights are not where they should be."""


@dataclass(frozen=True)
class _Source:
    loader: Loader
    list_specs: Callable[[], Iterable[str]]
    description: str


_SOURCES: dict[str, _Source] = {}


def register_loader(
    prefix: str,
    loader: Loader,
    *,
    list_specs: Callable[[], Iterable[str]] | None = None,
    description: str = "",
    overwrite: bool = False,
) -> None:
    """Make ``load_model("<prefix>:<spec>")`` call ``loader(spec, **kwargs)``.

    Args:
        prefix: Source name, lowercase letters, digits and ``_`` (e.g. ``"open_clip"``).
        loader: Called with the spec (the text after the first colon) and the keyword
            arguments of :func:`load_model`; it raises :class:`ModelNotFoundError` when
            the weights are missing and :class:`UnknownModelError` for a bad spec.
        list_specs: Returns the specs :func:`list_models` should show for this source.
        description: One line shown in error messages (what the source is, how to
            install it).
        overwrite: Replace an existing registration instead of raising.

    Raises:
        ValueError: the prefix is malformed or already registered.
    """
    if not prefix or not prefix.replace("_", "").isalnum() or prefix.lower() != prefix:
        raise ValueError(f"model source prefix must be lowercase [a-z0-9_]+, got {prefix!r}")
    if prefix in _SOURCES and not overwrite:
        raise ValueError(f"model source {prefix!r} is already registered")
    _SOURCES[prefix] = _Source(loader, list_specs or (lambda: ()), description)


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the known models, sorted; ``pattern`` keeps names containing it.

    Example:
        >>> "offline:camvid" in list_models()
        True
    """
    names = [
        f"{prefix}:{spec}" for prefix, source in _SOURCES.items() for spec in source.list_specs()
    ]
    if pattern:
        names = [name for name in names if pattern.lower() in name.lower()]
    return sorted(names)


def list_sources() -> list[str]:
    """Registered source prefixes, sorted."""
    return sorted(_SOURCES)


def load_model(name: str, **kwargs: Any) -> Any:
    """Load a model by its ``"<source>:<spec>"`` name.

    Args:
        name: E.g. ``"offline:camvid"``; see :func:`list_models`.
        **kwargs: Passed to the source's loader (e.g. ``device="cpu"``).

    Raises:
        UnknownModelError: no such source, or the source does not know the spec.
        ModelNotFoundError: the weights are missing; the message says where the loader
            looked and how to provide them.

    Example:
        >>> segmenter = load_model("offline:camvid")  # doctest: +SKIP
    """
    if not isinstance(name, str) or ":" not in name:
        raise UnknownModelError(
            f"model name must look like '<source>:<model>', got {name!r}; known sources: "
            f"{', '.join(list_sources())}; known models: {', '.join(list_models())}"
        )
    prefix, spec = name.split(":", 1)
    source = _SOURCES.get(prefix)
    if source is None:
        raise UnknownModelError(
            f"unknown model source {prefix!r} in {name!r}; registered sources: "
            f"{', '.join(list_sources())}; known models: {', '.join(list_models())}"
        )
    return source.loader(spec, **kwargs)
