"""Pair each sample of a batch with a random cluster-mate from the same batch.

The pairing is looked up by *sample id* (the sample's index in the training split),
never by position in the batch, so it is right for any shuffling. A sample whose
cluster has no other member in the batch is paired with itself and marked invalid;
the locality loss ignores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Pairing:
    """Result of :func:`pair_cluster_mates`.

    Attributes:
        mate: (B,) batch position of each sample's mate (itself when invalid).
        valid: (B,) True where the sample has a cluster-mate in the batch.
        clusters: (B,) cluster id of each sample.
    """

    mate: torch.Tensor
    valid: torch.Tensor
    clusters: torch.Tensor

    @property
    def valid_ratio(self) -> float:
        """Fraction of the batch with a mate (``locality_valid_ratio``)."""
        return float(self.valid.float().mean())

    @property
    def n_unique_clusters(self) -> int:
        """Distinct clusters present in the batch (``locality_n_unique_clusters``)."""
        return int(torch.unique(self.clusters).numel())


def pair_cluster_mates(clusters: torch.Tensor, generator: torch.Generator | None = None) -> Pairing:
    """Pick, for every sample, a uniformly random *other* sample of the same cluster.

    Args:
        clusters: (B,) integer cluster id of each batch sample.
        generator: Source of randomness for the choice among mates.

    Returns:
        The :class:`Pairing`.

    Example:
        >>> pairing = pair_cluster_mates(torch.tensor([3, 3, 7]))
        >>> pairing.mate[:2].tolist(), pairing.valid.tolist()
        ([1, 0], [True, True, False])
    """
    if clusters.dim() != 1 or clusters.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"clusters must be a 1-D integer tensor, got {clusters.dtype} "
            f"of shape {tuple(clusters.shape)}"
        )
    n = len(clusters)
    same = clusters[:, None] == clusters[None, :]
    same.fill_diagonal_(False)
    # A random score per candidate; the best-scoring mate is a uniform choice among mates.
    scores = torch.rand(n, n, generator=generator)
    scores = torch.where(same, scores, torch.full_like(scores, -1.0))
    best = scores.argmax(dim=1)
    valid = same.any(dim=1)
    mate = torch.where(valid, best, torch.arange(n))
    return Pairing(mate, valid, clusters)


def pair_by_sample_ids(
    sample_ids: torch.Tensor,
    cluster_of_sample: torch.Tensor,
    generator: torch.Generator | None = None,
) -> Pairing:
    """Pair a batch given its samples' ids and the id -> cluster table.

    Args:
        sample_ids: (B,) indices of the batch samples in the training split.
        cluster_of_sample: (N,) cluster id of every training sample.
        generator: Source of randomness.

    Returns:
        The :class:`Pairing` (positions refer to the batch).
    """
    if sample_ids.numel() and (sample_ids.min() < 0 or sample_ids.max() >= len(cluster_of_sample)):
        raise ValueError(
            f"sample ids must be in [0, {len(cluster_of_sample)}), got range "
            f"[{int(sample_ids.min())}, {int(sample_ids.max())}]"
        )
    return pair_cluster_mates(cluster_of_sample[sample_ids], generator)
