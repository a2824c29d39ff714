"""k-means (faiss and scikit-learn), encoders, and the encode-cluster files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clusterlens.flow.clustering import (
    ClusterAssignments,
    encode_and_cluster,
    kmeans,
    load_clusters,
)
from clusterlens.flow.data import load_dataset
from clusterlens.flow.encoders import load_vae, make_encoder
from clusterlens.models import ModelNotFoundError


def blobs(n_per: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([c + rng.normal(0, 0.5, (n_per, 2)) for c in centers])
    return points.astype(np.float32), np.repeat(np.arange(3), n_per)


@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
def test_kmeans_recovers_separated_blobs(backend):
    points, truth = blobs()
    result = kmeans(points, 3, seed=0, backend=backend)
    assert result.backend == backend
    for label in range(3):
        assert len(set(result.labels[truth == label].tolist())) == 1
    assert len(set(result.labels.tolist())) == 3
    assert 0 < result.inertia < 150 * 2 * 0.5**2 * 2  # about N * D * sigma^2


def test_kmeans_rejects_bad_input():
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans(np.zeros((5, 2)), 6)
    with pytest.raises(ValueError, match="backend"):
        kmeans(np.zeros((5, 2)), 2, backend="cuml")
    with pytest.raises(ValueError, match=r"features must be \(N, D\)"):
        kmeans(np.zeros(5), 2)


def test_encode_and_cluster_writes_the_four_files(tmp_path):
    dataset = load_dataset("8gaussians", n_train=800, n_test=10)
    summary = encode_and_cluster(dataset, "pixels", 8, tmp_path, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "assignments.csv",
        "cluster_centers.npy",
        "latents.npy",
        "summary.json",
    ]
    assert np.load(tmp_path / "cluster_centers.npy").shape == (8, 2)
    assert np.array_equal(np.load(tmp_path / "latents.npy"), dataset.train.numpy())
    assert sum(summary["cluster_sizes"]) == 800
    assert json.loads((tmp_path / "summary.json").read_text())["inertia"] == summary["inertia"]
    clusters = load_clusters(tmp_path)
    labels = clusters.labels_for(dataset.ids)
    # Every sample is assigned to its nearest centre, and the inertia adds up.
    centers = torch.from_numpy(clusters.centers)
    distances = torch.cdist(dataset.train, centers).pow(2)
    assert np.array_equal(distances.argmin(dim=1).numpy(), labels)
    assert summary["inertia"] == pytest.approx(float(distances.min(dim=1).values.sum()), rel=1e-3)
    with pytest.raises(ValueError, match="no cluster"):
        clusters.labels_for(["999999"])


def test_load_clusters_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing cluster_centers.npy"):
        load_clusters(tmp_path)


def test_labels_for_names_an_unknown_id():
    clusters = ClusterAssignments({"0": 1, "1": 0}, np.zeros((2, 2)), {})
    assert clusters.labels_for(["1", "0"]).tolist() == [0, 1]
    with pytest.raises(ValueError, match="sample id '7' has no cluster"):
        clusters.labels_for(["0", "7"])


def test_pca_encoder():
    samples = torch.randn(40, 64)
    features = make_encoder("pca:5")(samples)
    assert features.shape == (40, 5) and features.dtype == np.float32
    with pytest.raises(ValueError, match="positive component count"):
        make_encoder("pca:x")
    with pytest.raises(ValueError, match="more components"):
        make_encoder("pca:50")(torch.randn(10, 64))
    with pytest.raises(ValueError, match="accepted: pixels, pca:K, vae:NAME"):
        make_encoder("clip")


def tiny_vae_folder(path):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    )
    vae.save_pretrained(path)
    return path


@pytest.mark.slow
def test_vae_encoder_runs_a_real_autoencoderkl_from_a_folder(tmp_path):
    folder = tiny_vae_folder(tmp_path / "vae")
    encode = make_encoder(f"vae:{folder}", batch_size=2)
    features = encode(torch.rand(3, 3, 16, 16) * 2 - 1)
    assert features.shape == (3, 4 * 8 * 8)  # one downsampling: 16 -> 8, 4 latent channels
    assert np.isfinite(features).all()
    with pytest.raises(ValueError, match="RGB images"):
        encode(torch.zeros(3, 64))


def test_missing_vae_weights_raise_model_not_found(tmp_path):
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        load_vae(str(tmp_path / "nowhere"))
