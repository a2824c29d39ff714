"""Cluster-coupled flow matching (seed 05).

Data -> encoder -> k-means -> cluster-neighbour pairs -> flow matching with a locality
term -> ODE sampler -> distance to data and path straightness.

Example:
    >>> from clusterlens.flow import TrainConfig, load_dataset, pair_cluster_mates
    >>> load_dataset("moons", n_train=100, n_test=10).sample_shape
    (2,)
"""

from __future__ import annotations

from clusterlens.flow.clustering import (
    ClusterAssignments,
    KMeansResult,
    encode_and_cluster,
    kmeans,
    load_clusters,
)
from clusterlens.flow.data import (
    BUNDLED,
    SOURCES,
    TOYS,
    BatchStream,
    FlowDataset,
    load_dataset,
    sample_source,
    sample_toy,
)
from clusterlens.flow.encoders import encode_with_vae, load_vae, make_encoder
from clusterlens.flow.evaluation import DEFAULT_NFES, data_floor, evaluate_sweep, parse_nfes
from clusterlens.flow.losses import (
    LOCALITY_MODES,
    LocalityFlowMatching,
    LossResult,
    interpolate,
)
from clusterlens.flow.metrics import mmd, straightness, wasserstein2
from clusterlens.flow.networks import SmallUNet, VelocityMLP, build_network
from clusterlens.flow.pairing import Pairing, pair_by_sample_ids, pair_cluster_mates
from clusterlens.flow.plots import plot_image_grid, plot_metric_vs_nfe, plot_trajectories
from clusterlens.flow.sampling import SOLVERS, Trajectory, integrate
from clusterlens.flow.train import (
    MATCHERS,
    TrainConfig,
    Trainer,
    dataset_for,
    load_run,
    train,
)

__all__ = [
    "BUNDLED",
    "DEFAULT_NFES",
    "LOCALITY_MODES",
    "MATCHERS",
    "SOLVERS",
    "SOURCES",
    "TOYS",
    "BatchStream",
    "ClusterAssignments",
    "FlowDataset",
    "KMeansResult",
    "LocalityFlowMatching",
    "LossResult",
    "Pairing",
    "SmallUNet",
    "TrainConfig",
    "Trainer",
    "Trajectory",
    "VelocityMLP",
    "build_network",
    "data_floor",
    "dataset_for",
    "encode_and_cluster",
    "encode_with_vae",
    "evaluate_sweep",
    "integrate",
    "interpolate",
    "kmeans",
    "load_clusters",
    "load_dataset",
    "load_run",
    "load_vae",
    "make_encoder",
    "mmd",
    "pair_by_sample_ids",
    "pair_cluster_mates",
    "parse_nfes",
    "plot_image_grid",
    "plot_metric_vs_nfe",
    "plot_trajectories",
    "sample_source",
    "sample_toy",
    "straightness",
    "train",
    "wasserstein2",
]
