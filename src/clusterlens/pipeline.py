"""The ``select`` pipeline: query-aware patch selection, from image and question to patches.

image -> query coupling (a model) + information + salience -> clusters (if the
strategy wants them) -> balancer -> allocation strategy -> kept patches.

This composes ``relevance``, ``regions``, ``models`` and ``allocate``; it sits at the
package top level because ``allocate`` must not import ``relevance`` (each capability
folder imports only shared primitives), and a user should not need the CLI for it.
(Not named ``select.py``: that would shadow the standard library's ``select``.)

Queries are parsed first (:mod:`clusterlens.relevance.query_parse`; the grammar is in
docs/allocate.md) and the parse is reported in ``meta["query_parse"]``:
    - object phrases: each matched by the model on its own; the coupling is the model's
      probability of any of their classes, and the balancer weights the question most;
    - negations ("except X"): times one minus X's probability; regions ("on the left"):
      times the region's mask; "near Y": times Y's coupling spread around it; a region
      (or "near Y") alone: that map, with information and salience;
    - an empty query, a whole-scene question ("describe the image"), or one naming none
      of the model's classes: no coupling; the allocation falls back to information and
      salience, and ``notes`` says why;
    - a query whose classes are absent from the image (all coupling below 0.1):
      allocated as usual, with a note that nothing in the image matches.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterlens.allocate import Allocation, PatchGrid, allocate
from clusterlens.allocate.lazy_cascade import OVERSAMPLE as LAZY_OVERSAMPLE
from clusterlens.context import ImageContext
from clusterlens.image import ImageInput
from clusterlens.models.text import QueryMatch, loose_reason
from clusterlens.relevance import (
    NO_QUERY_WEIGHTS,
    QUERY_FREE_WAYS,
    QUERY_WEIGHTS,
    WAYS,
    FixedBalancer,
)
from clusterlens.relevance.fair_share import fair_scores
from clusterlens.relevance.query_parse import parse_query, region_mask
from clusterlens.relevance.source import CellSpans, CouplingSource, EncoderCost

DEFAULT_MODEL = "offline:camvid"
LOW_COUPLING = 0.1
CLUSTER_STRATEGIES = {"cluster-cascade": 64, "hierarchical-cluster": 128, "foveated": 64}
PARENT_CLUSTERS = 16


#: A way of knowing whose balancer weight is below this is not computed: it could move
#: no cell's score by more than 0.02 (each way lies in [0, 1]). The adaptive balancer
#: gives information and salience 0.0001-0.0007 whenever a query matches.
NEGLIGIBLE_WEIGHT = 0.01
#: "Near X" reaches this share of the image's longer side around X (a first choice,
#: not tuned: an eighth of a 480-px CamVid frame is 60 px, a car's length nearby).
NEAR_SIZE = 0.125
#: A region named without an object ("the top-left corner"): the coupling is its mask,
#: so a cell inside scores 0.5-1 and one outside 0-0.5. Every kept patch lies in the
#: region while the budget fits in it, chosen there by information and salience.
REGION_WEIGHTS = {"information": 0.25, "salience": 0.25, "coupling": 0.5}


@dataclass
class Selection:
    """An allocation together with what produced it, for pictures and reports.

    ``ways`` (3, H, W: information, salience, coupling) and ``relevance`` (H, W,
    balanced) are built when first read, so a caller that only wants the patches does
    not pay for full-size maps. A way that was skipped (negligible weight) is zeros;
    with ``lazy-cascade`` the coupling is the best pass that ran (dense, else coarse).
    """

    image: np.ndarray
    allocation: Allocation
    clusters: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    _ways: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    _weights: dict[str, float] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def ways(self) -> np.ndarray:
        return self._ways()

    @functools.cached_property
    def relevance(self) -> np.ndarray:
        weights = np.array([self._weights.get(way, 0.0) for way in WAYS], np.float32)
        return np.tensordot(weights, self.ways, axes=1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _model(name: str) -> Any:
    # local: keeps `import clusterlens` light; CLIPs come wrapped for open vocabulary
    from clusterlens.relevance.open_vocab import relevance_model

    return relevance_model(name)


def select_patches(
    image: ImageInput | ImageContext,
    query: str | None,
    strategy: str = "cluster-cascade",
    budget: int = 144,
    *,
    context: ImageContext | None = None,
    model: str | Any | None = None,
    grid: int | tuple[int, int] = 32,
    patch_size: int | None = None,
    gaze: tuple[float, float] | None = None,
    weights: dict[str, float] | None = None,
    balancer: str | None = None,
    min_match: float | None = None,
    clusters: np.ndarray | None = None,
    cluster_method: str = "fast",
    token_budget: int | None = None,
    seed: int = 0,
    max_side: int | None = 1024,
    **options: Any,
) -> Selection:
    """Choose the patches of ``image`` that matter for ``query``.

    Args:
        image: anything :func:`clusterlens.image.load_image` accepts, or an
            :class:`~clusterlens.context.ImageContext` (then ``context`` is not needed).
        query: the question or object of interest; None or "" for none.
        strategy, budget, grid, patch_size, gaze, token_budget, seed, options:
            passed to :func:`clusterlens.allocate.allocate`.
        context: the image's :class:`~clusterlens.context.ImageContext`, to reuse the
            query-free work of earlier calls (decoding, ways, clusters, the model's
            passes); it must have been made for ``image``.
        model: the query-coupling model: a registry name (default ``offline:camvid``;
            ``open_clip:<spec>`` and ``hf:<spec>`` CLIPs give open-vocabulary coupling,
            see :mod:`clusterlens.relevance.open_vocab`) or a loaded object with
            ``match_query(text)`` and ``relevance(image, classes)``
            (or the lazy interface of :mod:`clusterlens.relevance.source`).
        weights: fixed balancer weights per way of knowing (question-first by default).
        balancer: "adaptive" (the balancer trained with the offline model, shipped in
            the package, picks the weights per image), or "fixed" (``weights``). Default:
            "fixed" when ``weights`` are given, else "adaptive". Without a query the
            weights are always the fixed information/salience ones. A way whose weight
            is below :data:`NEGLIGIBLE_WEIGHT` is not computed (``cost["skipped"]``).
        min_match: the matcher's threshold for this call (default the model's own; see
            ``benchmarks/matcher.py`` for precision and recall at several). An accepted
            match that is only loose (:func:`clusterlens.models.text.loose_reason`) is
            noted either way.
        clusters: an (H, W) cluster map; computed with ``cluster_method`` (default the
            fast coarse-to-fine SLIC of ``clusterlens.regions``) when a cluster strategy
            needs one and none is given; ``hierarchical-cluster`` groups them into 16
            coarse clusters (Ward, on colour and position).
        max_side: images are downscaled to this longer side first (None: never); the
            allocation's pixel boxes still refer to the image as given.
    """
    started = time.perf_counter()
    cost: dict[str, Any] = {"cached": []}
    notes: list[str] = []
    context = _context_for(image, context, max_side, cost)
    rgb, original = context.rgb, context.original_size
    if gaze is not None and strategy != "foveated":
        notes.append(f"gaze is used only by the foveated strategy; {strategy} ignores it")
    if patch_size is not None:  # patch sizes count pixels of the image as given
        grid = PatchGrid.from_patch_size(*original, patch_size).shape
        patch_size = None
    patch_grid = PatchGrid.from_count(*rgb.shape[:2], grid)
    coupling = _Coupling.resolve(
        context, query, model, strategy, patch_grid, notes, cost, min_match,
        refine=_cells_to_refine(strategy, budget, options), budget=budget,
    )  # fmt: skip
    combiner, skipped = _balancer(balancer, weights, context, coupling, notes)
    query_free = _query_free_ways(context, skipped, cost)
    maps = np.concatenate([query_free, coupling.map_for_scorer(rgb.shape[:2])[None]])
    cluster_map, parents = _clusters_for(strategy, context, clusters, cluster_method, cost)
    allocation = allocate(
        maps,
        strategy,
        budget,
        grid=grid,
        clusters=cluster_map,
        parents=parents,
        gaze=gaze,
        seed=seed,
        combine=combiner,
        channel_names=WAYS,
        known_channels=QUERY_FREE_WAYS,
        token_budget=token_budget,
        query=query or None,
        coupling=coupling.lazy_cells(),
        meta={
            "model": coupling.model_name,
            "balancer": (balancer or ("fixed" if weights else "adaptive"))
            if coupling.matched
            else "fixed",
            "balancer_weights": combiner.report(),
            "query_match": coupling.summary,
            "query_parse": coupling.parse.to_json(),
            "notes": notes,
        },
        **options,
    )
    if rgb.shape[:2] != original:
        # boxes in pixels of the image as given; the maps were computed on a smaller copy
        allocation.grid = PatchGrid(*original, allocation.grid.rows, allocation.grid.cols)
        allocation.meta["processed_size"] = list(rgb.shape[:2])
    cost.update(coupling.cost(), skipped=sorted(skipped))
    if cost.pop("reused_passes", None):
        cost["cached"].append("model passes")
    # FLOP counting is instrumentation, not work a user's call needs: kept out of total_ms
    elapsed = (time.perf_counter() - started) * 1000 - cost["flop_count_ms"]
    cost["total_ms"] = round(elapsed, 2)
    allocation.cost = cost
    return Selection(
        rgb,
        allocation,
        cluster_map,
        notes,
        _ways=lambda: np.concatenate([query_free, coupling.map_for_picture()[None]]),
        _weights=dict(combiner.weights),
    )


def shown(query: str, limit: int = 80) -> str:
    """The query as messages quote it: repr, cut to ``limit`` characters."""
    return repr(query) if len(query) <= limit else repr(query[:limit]) + f"... ({len(query)} chars)"


def below(score: float, threshold: float) -> str:
    """'score < threshold' with as many decimals as it takes to tell them apart."""
    for digits in range(2, 7):
        if round(score, digits) != round(threshold, digits):
            break
    return f"{score:.{digits}f} < {threshold:.{digits}f}"


def _cells_to_refine(strategy: str, budget: Any, options: dict[str, Any]) -> int:
    """How many cells ``lazy-cascade`` will ask for at full settings (0 for others; a bad
    budget or option is left for ``allocate`` to explain)."""
    if strategy != "lazy-cascade" or not isinstance(budget, int) or budget < 1:
        return 0
    try:
        return math.ceil(float(options.get("oversample", LAZY_OVERSAMPLE)) * budget)
    except (TypeError, ValueError):
        return 0


def _context_for(
    image: ImageInput | ImageContext,
    context: ImageContext | None,
    max_side: int | None,
    cost: dict[str, Any],
) -> ImageContext:
    if isinstance(image, ImageContext):
        if context is not None and context is not image:
            raise ValueError("pass either an ImageContext as the image or context=, not two")
        context = image
    elif context is not None:
        context.check_same_image(image, max_side)
    else:
        context = ImageContext.of(image, max_side)
        cost["decode_ms"] = round(context.decode_ms, 2)
        return context
    cost["cached"].append("decoded image")
    return context


class _Coupling:
    """The query's coupling for one call: its parse, matched classes, the model's source,
    its cost.

    The coupling map is the union of the object phrases' classes (the model's
    probability of any of them), times one minus the negated classes' probability,
    times the mask of the named regions. A region named without an object is the mask
    alone (see :data:`REGION_WEIGHTS`); "everything except X" is one minus X's.
    """

    def __init__(self, model_name: str, strategy: str, grid: PatchGrid) -> None:
        self.model_name = model_name
        self.strategy = strategy
        self.grid = grid
        self.parse = parse_query(None)
        self.summary: dict[str, Any] | None = None
        self.classes: tuple[str, ...] = ()  # the union of the object phrases' classes
        self.negated: tuple[str, ...] = ()  # the negated phrases' classes
        self.regions: tuple[str, ...] = ()
        self.groups: list[tuple[str, ...]] = []  # each matched object's classes
        self.near: tuple[str, ...] = ()  # the classes of the "near" reference objects
        self.source: CouplingSource | None = None
        self.refine = 0  # cells lazy-cascade will ask for at full settings
        self.budget = 0  # patches the strategy keeps: sets each object's fair share
        self._before: EncoderCost | None = None
        self._timings: dict[str, float] = {}
        self._dense_map: np.ndarray | None = None
        self._scorer_map: np.ndarray | None = None

    @property
    def matched(self) -> bool:
        """Whether the model couples the query: an object or a negation matched."""
        return bool(self.classes or self.negated)

    @property
    def active(self) -> bool:
        """Whether there is a coupling map at all: a match, or a region alone."""
        return self.matched or bool(self.regions or self.near)

    @property
    def compound(self) -> bool:
        """Unions by fair shares, negations, regions and surroundings combine whole maps, which
        the lazy cells cannot."""
        return bool(self.negated or self.regions or self.near or len(self.groups) > 1)

    @classmethod
    def resolve(
        cls,
        context: ImageContext,
        query: str | None,
        model: str | Any | None,
        strategy: str,
        grid: PatchGrid,
        notes: list[str],
        cost: dict[str, Any],
        min_match: float | None = None,
        refine: int = 0,
        budget: int = 0,
    ) -> _Coupling:
        loaded = model if model is not None and not isinstance(model, str) else None
        name = getattr(loaded, "name", None) or model or DEFAULT_MODEL
        coupling = cls(name, strategy, grid)
        coupling.refine = refine
        coupling.budget = budget if isinstance(budget, int) and budget > 0 else 0
        coupling.parse = parse_query(query)
        if not coupling._wants_model(query or "", notes):
            return coupling
        if model is None:
            notes.append(f"no model named: using the offline default {DEFAULT_MODEL}")
        if loaded is None:
            started = time.perf_counter()
            loaded = _model(name)
            cost["load_model_ms"] = round((time.perf_counter() - started) * 1000, 2)
        started = time.perf_counter()
        coupling._match(_Matcher(loaded, min_match), query, notes)
        cost["match_ms"] = round((time.perf_counter() - started) * 1000, 2)
        if coupling.matched or coupling.near:
            coupling.source = context.source(loaded, name, [])
            coupling._before = coupling.source.cost.snapshot()
            coupling._note_absent(notes)
            coupling._note_lazy(notes)
        return coupling

    def _wants_model(self, query: str, notes: list[str]) -> bool:
        """Whether the parse names objects for the model; notes the other intents."""
        intent, self.regions = self.parse.intent, self.parse.regions
        if intent == "none":
            notes.append("no query: patches chosen by information and salience only")
        elif intent == "scene":
            notes.append(
                f"query {shown(query)} asks about the whole scene: patches chosen by "
                "information and salience only"
            )
        elif intent == "region" and self.regions:
            notes.append(
                f"query {shown(query)} names a region ({', '.join(self.regions)}) and no "
                "object: patches chosen by information and salience inside it"
            )
        if intent == "region" and self.parse.near:
            notes.append(
                f"query {shown(query)} names no object: patches chosen by information and "
                f"salience around {', '.join(self.parse.near)}"
            )
        return intent in ("objects", "except") or bool(self.parse.near)

    def _match(self, matcher: _Matcher, query: str, notes: list[str]) -> None:
        """Match every object and negated phrase; keep the classes of those that match."""
        phrases = [(p, "object") for p in self.parse.objects]
        phrases += [(p, "negation") for p in self.parse.negations]
        phrases += [(p, "near") for p in self.parse.near]
        reports, classes, negated, near = [], [], [], []
        for phrase, role in phrases:
            match = matcher(phrase)
            loose = loose_reason(match, matcher)
            reports.append(_phrase_report(phrase, role, match, loose))
            if loose:
                notes.append(
                    f"{shown(phrase)} is only a loose match for {match.best[0]!r}: {loose}"
                )
            if match.matched:
                {"object": classes, "negation": negated, "near": near}[role].extend(match.classes)
                if role == "object":
                    self.groups.append(tuple(match.classes))
            else:
                notes.append(self._unmatched_note(query, phrase, role, match, len(phrases)))
        self.classes = tuple(dict.fromkeys(classes))
        self.near = tuple(dict.fromkeys(near))
        overlap = [name for name in dict.fromkeys(negated) if name in self.classes]
        if overlap:
            notes.append(f"negated classes {', '.join(overlap)} are also asked for: not subtracted")
        self.negated = tuple(name for name in dict.fromkeys(negated) if name not in overlap)
        if self.parse.objects and not self.classes:
            self.negated = self.near = ()  # nothing to subtract from or to look around
        first = reports[0]
        self.summary = {
            "matched": self.matched,
            "classes": list(self.classes),
            "best": first["best"],
            "threshold": first["threshold"],
            "phrases": reports,
        }
        if self.negated:
            self.summary["negated"] = list(self.negated)
        if self.near:
            self.summary["near"] = list(self.near)
        if not self.matched and not self.parse.objects and not self.near:
            self.regions = ()  # "not X" when X matched nothing: no coupling at all

    def _unmatched_note(
        self, query: str, phrase: str, role: str, match: QueryMatch, count: int
    ) -> str:
        best, score = match.best
        said = f"query {shown(query)}" if count == 1 else f"{role} {shown(phrase)}"
        note = f"{said} names none of the model's classes (best {best!r} at "
        note += f"{below(score, match.threshold)})"
        if count > 1:
            return note + ": left out"
        if self.parse.regions and role == "object":
            return note + ": patches chosen by information and salience inside the region"
        return note + ": patches chosen by information and salience only"

    def _note_absent(self, notes: list[str]) -> None:
        if self.near:
            peak = float(self.source.coupling_map(self.near, "dense").max())
            if peak < LOW_COUPLING:
                notes.append(
                    f"nothing in the image matches {', '.join(self.near)}, which the objects "
                    f"should be near (max relevance {peak:.2f})"
                )
        if not self.classes:
            return
        peak = float(self.stats_map().max())
        if peak < LOW_COUPLING:
            where = f" ({', '.join(self.regions)})" if self.regions else ""
            notes.append(
                f"nothing in the image{where} matches {', '.join(self.classes)} "
                f"(max relevance {peak:.2f})"
            )

    def _note_lazy(self, notes: list[str]) -> None:
        if self.strategy != "lazy-cascade":
            return
        if not self.source.lazy:
            notes.append(
                f"model {self.model_name} cannot evaluate lazily: lazy-cascade used its dense map"
            )
        elif self.compound:
            notes.append(
                "several objects, negations and regions combine whole maps: lazy-cascade "
                "used the dense map"
            )
        elif not self.source.windows_may_pay(self.refine, self.spans()):
            notes.append(
                f"windows around the {self.refine} cells lazy-cascade would refine cost more "
                f"than one dense pass of {self.model_name}: it used the dense map from the start"
            )

    def _uses_lazy_cells(self) -> bool:
        """Whether the lazy cascade asks the source for cells: not for compound queries,
        nor when windows around the cells it will refine cannot beat one dense pass (then
        a coarse pass would only add cost, and the dense map is used from the start)."""
        return (
            self.strategy == "lazy-cascade"
            and self.source is not None
            and self.source.lazy
            and not self.compound
            and self.source.windows_may_pay(self.refine, self.spans())
        )

    def spans(self) -> CellSpans:
        return CellSpans(*self.grid.spans(), self.grid.height, self.grid.width)

    def stats_map(self) -> np.ndarray:
        """The coupling the balancer's image statistics read: the coarse pass's for the
        lazy cascade (the dense one may never run), else the dense map."""
        if self._uses_lazy_cells():
            return self.source.probabilities("coarse")[self.source.class_indices(self.classes)].sum(
                0
            )
        return self.dense_map()

    def dense_map(self) -> np.ndarray:
        """(H, W) in [0, 1]: union of the objects, less the negations, in the regions."""
        if self._dense_map is None:
            coupling = np.ones((self.grid.height, self.grid.width), np.float32)  # everything
            if self.classes:
                coupling = np.clip(self.source.coupling_map(self.classes, "dense"), 0.0, 1.0)
            self._dense_map = self._less_negations_in_regions(coupling)
        return self._dense_map

    def _less_negations_in_regions(self, coupling: np.ndarray) -> np.ndarray:
        if self.negated:
            negated = np.clip(self.source.coupling_map(self.negated, "dense"), 0.0, 1.0)
            coupling = coupling * (1.0 - negated)
        if self.regions:
            coupling = coupling * region_mask(self.regions, self.grid.height, self.grid.width)
        if self.near:
            coupling = coupling * self._surroundings()
        return coupling.astype(np.float32)

    def _surroundings(self) -> np.ndarray:
        """(H, W) in [0, 1]: the "near" objects' coupling spread by a maximum filter over
        :data:`NEAR_SIZE` of the image's longer side (high on and around them)."""
        from scipy import ndimage  # local: only "near" queries need it

        reference = np.clip(self.source.coupling_map(self.near, "dense"), 0.0, 1.0)
        size = max(3, round(NEAR_SIZE * max(reference.shape)))
        return ndimage.maximum_filter(reference, size=size, mode="nearest")

    def _fair_shares(self) -> np.ndarray:
        """The scorer's map for several objects: each gets a fair share of the budget
        (:mod:`clusterlens.relevance.fair_share`), ranked by the objects' masses."""
        row_starts, row_ends, col_starts, col_ends = self.grid.spans()
        cell_pixels = np.outer(row_ends - row_starts, col_ends - col_starts)
        masses = [
            self.grid.cell_means(
                self._less_negations_in_regions(
                    np.clip(self.source.coupling_map(group, "dense"), 0.0, 1.0)
                )
            )[0]
            * cell_pixels
            for group in self.groups
        ]
        score = fair_scores(masses, min(self.budget, cell_pixels.size))
        return np.repeat(np.repeat(score, row_ends - row_starts, axis=0), col_ends - col_starts, 1)

    def map_for_scorer(self, shape: tuple[int, int]) -> np.ndarray:
        """The coupling channel handed to ``allocate``: zeros when the lazy cascade asks
        the source for cells instead, or when there is no coupling."""
        if not self.active or self._uses_lazy_cells():
            return np.zeros(shape, np.float32)
        return self.scorer_map()

    def scorer_map(self) -> np.ndarray:
        """What cells are scored by: the dense map, or for several objects their turns."""
        if self._scorer_map is None:
            self._scorer_map = self._fair_shares() if len(self.groups) > 1 else self.dense_map()
        return self._scorer_map

    def map_for_picture(self) -> np.ndarray:
        if not self.active:
            return np.zeros((self.grid.height, self.grid.width), np.float32)
        if self._uses_lazy_cells():  # the best pass that ran: the dense one may not have
            return np.clip(self.source.coupling_map(self.classes), 0.0, 1.0).astype(np.float32)
        return self.dense_map()

    def lazy_cells(self) -> _LazyCells | None:
        if self.strategy != "lazy-cascade" or not self.matched:
            return None
        return _LazyCells(self)

    def cost(self) -> dict[str, Any]:
        if self.source is None:
            return EncoderCost().to_json()
        spent = self.source.cost.since(self._before)
        report = spent.to_json()
        report["reused_passes"] = spent.calls == 0 and self._before.calls > 0
        return report


class _Matcher:
    """The model's ``match_query``, at ``min_match`` when one is given."""

    def __init__(self, model: Any, min_match: float | None) -> None:
        self.model = model
        self.min_match = min_match

    def __call__(self, phrase: str) -> QueryMatch:
        match = self.model.match_query(phrase)
        return match if self.min_match is None else match.with_threshold(self.min_match)


def _phrase_report(phrase: str, role: str, match: QueryMatch, loose: str | None) -> dict[str, Any]:
    """How one phrase was matched: its best class and the runner-up, with scores."""
    best, runner_up = match.best, match.runner_up
    return {
        "phrase": phrase,
        "role": role,
        "matched": match.matched,
        "classes": list(match.classes),
        "best": [best[0], round(best[1], 4)],
        "runner_up": None if runner_up is None else [runner_up[0], round(runner_up[1], 4)],
        "threshold": match.threshold,
        "loose": loose,
    }


class _LazyCells:
    """The :class:`~clusterlens.allocate.lazy_cascade.CellCoupling` of one query."""

    def __init__(self, coupling: _Coupling) -> None:
        self.coupling = coupling
        self.spans = CellSpans(*coupling.grid.spans(), coupling.grid.height, coupling.grid.width)

    def _all_dense(self) -> np.ndarray:
        return self.coupling.grid.cell_means(self.coupling.scorer_map())[0]

    def coarse(self, expected: int) -> np.ndarray:
        # when windows for ``expected`` cells cannot pay, _uses_lazy_cells() is already
        # false and the dense map serves every request
        if not self.coupling._uses_lazy_cells():
            return self._all_dense()
        return self.coupling.source.coarse_cells(self.coupling.classes, self.spans)

    def fine(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if not self.coupling._uses_lazy_cells():
            return self._all_dense()[rows, cols]
        return self.coupling.source.fine_cells(self.coupling.classes, self.spans, rows, cols)

    def exact(self) -> np.ndarray | None:
        source = self.coupling.source
        if not self.coupling._uses_lazy_cells():
            return self._all_dense()
        if source.has_pass("dense"):
            return source.dense_cells(self.coupling.classes, self.spans)
        return None


def _balancer(
    kind: str | None,
    weights: dict[str, float] | None,
    context: ImageContext,
    coupling: _Coupling,
    notes: list[str],
) -> tuple[FixedBalancer, set[str]]:
    """The balancer, and the query-free ways whose weight is too small to compute."""
    kind = kind or ("fixed" if weights else "adaptive")
    if kind not in ("fixed", "adaptive"):
        raise ValueError(f"balancer must be 'fixed' or 'adaptive', got {kind!r}")
    if not coupling.active:
        return FixedBalancer(NO_QUERY_WEIGHTS), set()
    if not coupling.matched:  # a region alone: the adaptive balancer knows no masks
        return FixedBalancer(REGION_WEIGHTS), set()
    if kind == "adaptive":
        from clusterlens.relevance.adaptive import default_balancer_path

        # the image statistics it reads come from a 128-px copy and the coupling that is
        # already there, so that deciding the weights never costs the full-size maps
        thumbnail = context.thumbnail_ways()
        combiner = _adaptive(default_balancer_path()).for_maps(
            [thumbnail[0], thumbnail[1], coupling.stats_map()]
        )
    else:
        combiner = FixedBalancer(weights or QUERY_WEIGHTS)
    skipped = {way for way in QUERY_FREE_WAYS if combiner.weights[way] < NEGLIGIBLE_WEIGHT}
    if skipped:
        kept = {way: (0.0 if way in skipped else w) for way, w in combiner.weights.items()}
        combiner = FixedBalancer(kept)
    return combiner, skipped


@functools.lru_cache(maxsize=2)
def _adaptive(path):
    from clusterlens.relevance.adaptive import AdaptiveBalancer

    return AdaptiveBalancer.load(path)


def _query_free_ways(context: ImageContext, skipped: set[str], cost: dict[str, Any]) -> np.ndarray:
    """(2, H, W) information and salience; zeros for skipped ones (never computed)."""
    height, width = context.rgb.shape[:2]
    if skipped >= set(QUERY_FREE_WAYS):
        cost["ways_ms"] = 0.0
        return np.zeros((len(QUERY_FREE_WAYS), height, width), np.float32)
    started = time.perf_counter()
    ways = context.query_free_ways(cost["cached"]).copy()
    for index, way in enumerate(QUERY_FREE_WAYS):
        if way in skipped:
            ways[index] = 0.0
    cost["ways_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return ways


def _clusters_for(
    strategy: str,
    context: ImageContext,
    given: np.ndarray | None,
    method: str,
    cost: dict[str, Any],
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Cluster maps for the strategies that use them; fine and grouped for the hierarchy.
    Computed maps are kept in the context for the next query."""
    if strategy not in CLUSTER_STRATEGIES:
        return given, None
    from clusterlens.regions import cluster_image  # local: only cluster strategies need it
    from clusterlens.regions.hierarchy import group_clusters

    started = time.perf_counter()
    rgb, count = context.rgb, CLUSTER_STRATEGIES[strategy]
    labels = (
        given
        if given is not None
        else context.clusters(
            (method, count), lambda: cluster_image(rgb, method, count).labels, cost["cached"]
        )
    )
    parents = None
    if strategy == "hierarchical-cluster":

        def group() -> np.ndarray:
            return group_clusters(labels, rgb, max_clusters=PARENT_CLUSTERS).coarse.labels

        # groups of a caller's own map are not kept: nothing identifies that map later
        parents = (
            group()
            if given is not None
            else context.clusters((method, count, "parents"), group, cost["cached"])
        )
    cost["clusters_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return labels, parents
