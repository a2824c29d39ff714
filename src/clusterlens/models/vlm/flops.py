"""Prefill cost of a decoder-only language model, FastV-style.

Per decoder layer, with ``n`` tokens, hidden size ``d`` and FFN (intermediate) size
``m``::

    FLOPs(layer) = 4 n d^2 + 2 n^2 d + 2 n d m

``4 n d^2`` counts the Q, K, V and output projections, ``2 n^2 d`` the attention
scores and the weighted sum of values, ``2 n d m`` the feed-forward network. This
is the formula of FastV (Chen et al., 2024); it counts one multiply-add as one
operation and two FFN matrices, and ignores grouped-query savings on K/V, the
third (gate) matrix of SwiGLU FFNs, norms, RoPE and the LM head. It is a relative
measure -- the ratio kept/full is what it is for; the benchmark checks it against
measured prefill time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecoderShape:
    """What the FLOPs formula needs from a language model's config."""

    layers: int
    hidden: int
    ffn: int

    @classmethod
    def from_config(cls, text_config: Any) -> DecoderShape:
        """Read ``num_hidden_layers``, ``hidden_size``, ``intermediate_size``."""
        try:
            return cls(
                int(text_config.num_hidden_layers),
                int(text_config.hidden_size),
                int(text_config.intermediate_size),
            )
        except AttributeError as err:
            raise ValueError(
                "the text config needs num_hidden_layers, hidden_size and intermediate_size "
                f"for the FLOPs estimate: {err}"
            ) from err


def prefill_flops(tokens: int, shape: DecoderShape) -> int:
    """FastV per-layer count summed over the layers, for a prompt of ``tokens`` tokens.

    Example:
        >>> prefill_flops(10, DecoderShape(layers=2, hidden=4, ffn=8))
        4160
    """
    if tokens < 0:
        raise ValueError(f"token count must be non-negative, got {tokens}")
    n, d, m = tokens, shape.hidden, shape.ffn
    return shape.layers * (4 * n * d * d + 2 * n * n * d + 2 * n * d * m)
