"""Metrics shared by every capability, and access to the annotated data sets."""

from __future__ import annotations

from clusterlens.evaluate.datasets import data_root, dataset_dir

__all__ = ["data_root", "dataset_dir"]
