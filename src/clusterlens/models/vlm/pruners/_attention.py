"""Read the attention weights of one attention module without changing the model.

Fast attention kernels (SDPA, flash) never materialise the attention matrix, and
switching a whole model to eager attention to read one layer would distort the
timings a pruning method is judged on. :func:`attention_probe` instead gives *one*
attention module its own copy of the config whose ``_attn_implementation`` names a
recording function registered with transformers' ``AttentionInterface``. That
function computes the module's output with the implementation it had before (the
model's own eager function for "eager"), and softmax(q k^T * scale) for the query
rows a method needs: the last one (FastV), the first one (CLS, VisionZip on CLIP)
or all of them averaged (attention received, VisionZip on Qwen). Rotary
embeddings, QK norms and head layouts are the module's own, so nothing is
re-implemented per family.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

PROBE_NAME = "clusterlens_attention_probe"
QUERY_ROWS = ("last", "first", "mean")
#: query rows softmaxed at once for "mean"
ROW_BLOCK = 512


@dataclass
class AttentionRecord:
    """What a probe saw: one (batch, keys) tensor per call, heads averaged.

    Attributes:
        rows: which query rows were read ("last", "first" or "mean" over all).
        min_queries: calls with fewer query rows are skipped (decode steps).
        calls: one (batch, keys) float32 tensor per recorded call, in call order.
    """

    rows: str
    min_queries: int = 1
    original: str = "sdpa"
    calls: list[torch.Tensor] = field(default_factory=list)


def _probe_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    record: AttentionRecord = module._clusterlens_attention_record
    if query.shape[-2] >= record.min_queries:
        record.calls.append(_head_mean_weights(query, key, attention_mask, scaling, record.rows))
    return _original_attention(module, record.original)(
        module, query, key, value, attention_mask, scaling=scaling, **kwargs
    )


def _original_attention(module: torch.nn.Module, name: str) -> Any:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if name == "eager":
        # the family's own eager function lives in the module's file
        return sys.modules[type(module).__module__].eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[name]


def _head_mean_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    mask: torch.Tensor | None,
    scaling: float | None,
    rows: str,
) -> torch.Tensor:
    """softmax(q k^T * scale) of the chosen rows, averaged over heads (and rows for "mean")."""
    heads, head_dim = query.shape[1], query.shape[-1]
    scale = head_dim**-0.5 if scaling is None else scaling
    # grouped-query attention: query head h reads key head h // (heads / kv_heads)
    key = key.repeat_interleave(heads // key.shape[1], dim=1)
    queries = query.shape[-2]
    if rows == "last":
        return _row_block_weights(query, key, mask, scale, queries - 1, queries).mean(dim=(1, 2))
    if rows == "first":
        return _row_block_weights(query, key, mask, scale, 0, 1).mean(dim=(1, 2))
    # "mean": sum the rows block by block so a 4000-patch image never holds the whole
    # (heads, queries, keys) matrix at once
    total = None
    for start in range(0, queries, ROW_BLOCK):
        block = _row_block_weights(query, key, mask, scale, start, min(start + ROW_BLOCK, queries))
        summed = block.sum(dim=2)
        total = summed if total is None else total + summed
    return (total / queries).mean(dim=1)


def _row_block_weights(
    query: torch.Tensor,
    key: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float,
    start: int,
    stop: int,
) -> torch.Tensor:
    """(batch, heads, stop - start, keys) softmax weights of query rows start..stop."""
    scores = torch.matmul(query[..., start:stop, :].float(), key.float().transpose(-1, -2)) * scale
    if mask is not None:
        mask = mask[..., start:stop, :] if mask.shape[-2] > 1 else mask
        bool_mask = mask.dtype == torch.bool
        scores = scores.masked_fill(~mask, float("-inf")) if bool_mask else scores + mask
    return torch.softmax(scores, dim=-1)


def _register_probe() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(PROBE_NAME, _probe_attention)


@contextmanager
def attention_probe(
    module: torch.nn.Module, rows: str, min_queries: int = 1
) -> Iterator[AttentionRecord]:
    """Record the head-averaged attention weights of ``module`` while the block runs.

    Args:
        module: an attention module that dispatches through
            ``ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, ...)``
            (every transformers VLM clusterlens supports does).
        rows: "last" (the last query's row), "first" (the first query's) or "mean"
            (all rows averaged: the attention each key receives).
        min_queries: record only calls with at least this many queries (2 skips decode).

    Yields:
        the record; its ``calls`` fill while the model runs.
    """
    if rows not in QUERY_ROWS:
        raise ValueError(f"rows must be one of {QUERY_ROWS}, got {rows!r}")
    config = getattr(module, "config", None)
    if config is None or not hasattr(config, "_attn_implementation"):
        raise ValueError(
            f"{type(module).__name__} has no config._attn_implementation; "
            "attention weights can only be read from transformers attention modules"
        )
    _register_probe()
    record = AttentionRecord(rows, min_queries, config._attn_implementation or "eager")
    probed = copy.copy(config)
    probed._attn_implementation = PROBE_NAME
    module.config = probed
    module._clusterlens_attention_record = record
    try:
        yield record
    finally:
        module.config = config
        del module._clusterlens_attention_record
