"""Cluster-mate pairing: mates share a cluster, loners are invalid, ids not positions."""

from __future__ import annotations

import pytest
import torch

from clusterlens.flow.pairing import pair_by_sample_ids, pair_cluster_mates


def test_every_valid_mate_shares_the_cluster_and_is_another_sample():
    clusters = torch.tensor([0, 1, 0, 2, 1, 1, 0, 3])
    for seed in range(20):
        pairing = pair_cluster_mates(clusters, torch.Generator().manual_seed(seed))
        valid = pairing.valid
        assert valid.tolist() == [True, True, True, False, True, True, True, False]
        positions = torch.arange(len(clusters))
        assert torch.equal(clusters[pairing.mate][valid], clusters[valid])
        assert not torch.any(pairing.mate[valid] == positions[valid])
        # Samples without a mate are paired with themselves.
        assert pairing.mate[~valid].tolist() == [3, 7]


def test_metrics_of_a_pairing():
    pairing = pair_cluster_mates(torch.tensor([5, 5, 9, 7, 7, 7]))
    assert pairing.valid_ratio == pytest.approx(5 / 6)
    assert pairing.n_unique_clusters == 3


def test_mates_are_drawn_uniformly_among_cluster_members():
    clusters = torch.zeros(4, dtype=torch.long)  # sample 0 has three mates
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    for _ in range(600):
        counts[pair_cluster_mates(clusters, generator).mate[0]] += 1
    assert counts[0] == 0
    assert torch.all((counts[1:] > 150) & (counts[1:] < 250))


def test_pairing_follows_sample_ids_not_batch_positions():
    cluster_of_sample = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    generator = torch.Generator().manual_seed(1)
    shuffled_ids = torch.tensor([5, 2, 0, 4, 3, 1, 6])  # a shuffled loader's batch
    pairing = pair_by_sample_ids(shuffled_ids, cluster_of_sample, generator)
    mate_ids = shuffled_ids[pairing.mate]
    valid = pairing.valid
    assert torch.equal(cluster_of_sample[mate_ids][valid], cluster_of_sample[shuffled_ids][valid])
    assert valid.tolist() == [True] * 6 + [False]
    # Positions would pair 0<->1, 2<->3 ...; ids pair 5<->4, 2<->3, 0<->1.
    assert {int(shuffled_ids[0]), int(mate_ids[0])} == {5, 4}


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="1-D integer"):
        pair_cluster_mates(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"sample ids must be in \[0, 3\)"):
        pair_by_sample_ids(torch.tensor([0, 3]), torch.tensor([0, 0, 1]))
