"""VideoContext: the query-free work on one clip, kept for the next query.

Per frame it keeps what :class:`clusterlens.context.ImageContext` keeps for an image
(decoded pixels, the relevance model's passes), plus the small grayscale copies and
optical flows the temporal cascade carries maps along. Memory stays bounded: at most
``max_cached`` frames keep their ImageContext -- by default as many as fit in
:data:`MAX_CACHED_BYTES` counting each frame's float RGB twice (pixels plus passes and
ways): 128 frames at 480x360, 28 at 1024x768; grays (about 40 kB) and flows are
always kept. Frames beyond the bound are decoded again when a later query needs them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from clusterlens.context import ImageContext
from clusterlens.relevance.source import CouplingSource, EncoderCost
from clusterlens.video.frames import VideoFrames
from clusterlens.video.warp import FlowField, flow_gray

#: At most this many frames keep their ImageContext ...
MAX_CACHED_FRAMES = 128
#: ... and no more than fit in this many bytes (a frame's float RGB counted twice).
MAX_CACHED_BYTES = 512 * 2**20


def frames_that_fit(size: tuple[int, int]) -> int:
    """How many frames of ``size`` (H, W) keep their ImageContext by default."""
    per_frame = 2 * size[0] * size[1] * 3 * 4
    return int(max(1, min(MAX_CACHED_FRAMES, MAX_CACHED_BYTES // per_frame)))


class VideoContext:
    """One clip's decoded frames, model passes, grays and flows, shared by queries."""

    def __init__(self, frames: VideoFrames, max_cached: int | None = None) -> None:
        self.frames = frames
        self.max_cached = max_cached if max_cached is not None else frames_that_fit(frames.size)
        self._contexts: dict[int, ImageContext] = {}
        self._grays: dict[int, np.ndarray] = {}
        self._flows: dict[tuple[int, int], np.ndarray] = {}
        self._flow = FlowField()

    def __len__(self) -> int:
        return len(self.frames)

    def contexts(
        self, indices: Iterable[int], ledger: Ledger
    ) -> Iterator[tuple[int, ImageContext]]:
        """Yield ``(index, ImageContext)`` in increasing order, decoding only frames
        whose context is not kept."""
        wanted = sorted(set(indices))
        missing = [i for i in wanted if i not in self._contexts]
        for index in wanted:
            if index in self._contexts:
                ledger.reused("decoded frames", ("frame", index))
        fresh = self._decode(missing, ledger)
        for index in wanted:
            context = self._contexts.get(index)
            if context is None:
                context = self._context_of(index, next(fresh), ledger)
                ledger.made.add(("frame", index))
            yield index, context

    def grays(self, indices: Iterable[int], ledger: Ledger) -> dict[int, np.ndarray]:
        """Small grayscale copies of the given frames (decoded when not known)."""
        wanted = sorted(set(indices))
        missing = [i for i in wanted if i not in self._grays and i not in self._contexts]
        for index, rgb in self._decode(missing, ledger):
            self._grays[index] = flow_gray(rgb)
        for index in wanted:
            if index not in self._grays:
                self._grays[index] = flow_gray(self._contexts[index].rgb)
        return {index: self._grays[index] for index in wanted}

    def flow(self, target: int, source: int, ledger: Ledger) -> np.ndarray:
        """Flow from frame ``target`` to frame ``source`` (kept for the next query)."""
        key = (target, source)
        if key in self._flows:
            ledger.reused("flows", ("flow", key))
        else:
            ledger.made.add(("flow", key))
            grays = self.grays([target, source], ledger)
            started = time.perf_counter()
            self._flows[key] = self._flow(grays[target], grays[source])
            ledger.add("flow_ms", (time.perf_counter() - started) * 1000)
            ledger.add("flows_computed", 1)
        return self._flows[key]

    def source(
        self, context: ImageContext, model: Any, name: str, ledger: Ledger
    ) -> CouplingSource:
        """The lazy relevance source of ``model`` on one frame, its cost tracked."""
        cached: list[str] = []
        source = context.source(model, name, cached)
        ledger.track(source)
        if cached:
            ledger.reused("model passes", ("source", id(source)))
        else:
            ledger.made.add(("source", id(source)))
        return source

    def _decode(self, indices: list[int], ledger: Ledger) -> Iterator[tuple[int, np.ndarray]]:
        started = time.perf_counter()
        for index, rgb in self.frames.read(indices):
            ledger.add("decode_ms", (time.perf_counter() - started) * 1000)
            ledger.add("frames_decoded", 1)
            yield index, rgb
            started = time.perf_counter()

    def _context_of(
        self, index: int, decoded: tuple[int, np.ndarray], ledger: Ledger
    ) -> ImageContext:
        read_index, rgb = decoded
        if read_index != index:  # a file shorter than its container said
            raise ValueError(f"{self.frames.name} ended before frame {index}")
        # the frame is identified by clip and index: hashing every frame's pixels would
        # cost about 1 ms each for nothing (these contexts never leave the VideoContext)
        name = f"video:{self.frames.name}:{index}"
        context = ImageContext(rgb, self.frames.original_size, self.frames.max_side, name)
        self._grays.setdefault(index, flow_gray(rgb))
        if len(self._contexts) < self.max_cached:
            self._contexts[index] = context
        return context


class Ledger:
    """What one ``select_video`` call spent: times, counts, model cost, and what came
    from earlier calls (``cached``; what this call made and used twice is not counted)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.cached: dict[str, int] = {}
        self.made: set[tuple[Any, ...]] = set()  # made by this call
        self._counted: set[tuple[Any, ...]] = set()
        self._sources: dict[int, tuple[CouplingSource, EncoderCost]] = {}

    def add(self, key: str, amount: float) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def reused(self, what: str, key: tuple[Any, ...]) -> None:
        """Count ``key`` under ``what`` once, if an earlier call made it."""
        if key not in self.made and key not in self._counted:
            self._counted.add(key)
            self.cached[what] = self.cached.get(what, 0) + 1

    def track(self, source: CouplingSource) -> None:
        """Count ``source``'s model calls from now on (once per source)."""
        self._sources.setdefault(id(source), (source, source.cost.snapshot()))

    def encoder(self) -> dict[str, Any]:
        """The model's cost over every tracked source (as for images, plus pass counts)."""
        total = EncoderCost()
        passes: dict[str, int] = {}
        for source, before in self._sources.values():
            spent = source.cost.since(before)
            total.ms += spent.ms
            total.gflops += spent.gflops
            total.pixels += spent.pixels
            total.calls += spent.calls
            total.count_ms += spent.count_ms
            for name in spent.passes:
                passes[name] = passes.get(name, 0) + 1
        report = total.to_json()
        report["encoder_passes"] = {name: count for name, count in sorted(passes.items())}
        return report
