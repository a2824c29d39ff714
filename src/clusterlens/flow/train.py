"""Training loop: flow matching with a locality term, logged, checkpointed, resumable.

A run lives in one folder:

- ``config.json``: the :class:`TrainConfig`;
- ``checkpoint.pt``: network, optimizer, step and random-generator states;
- ``metrics.csv``: one row per logging interval, columns named as in seed 05
  (``loss_locality``, ``locality_valid_ratio``...);
- ``tensorboard/``: the same numbers under ``training/<name>``, the mode as text.

Re-running with the same folder resumes from the checkpoint: batches are rebuilt from
(seed, step) and the random generators are restored, so an interrupted run ends where an
uninterrupted one would; rows logged after the last checkpoint are dropped, not repeated.

``matcher`` selects the coupling: ``ours`` (independent pairs + the locality term of
``locality``), or torchcfm's ``icfm`` (ConditionalFlowMatcher) and ``otcfm``
(ExactOptimalTransportConditionalFlowMatcher) baselines, with sigma = 0 everywhere.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from clusterlens.flow.clustering import load_clusters
from clusterlens.flow.data import SOURCES, BatchStream, FlowDataset, load_dataset, sample_source
from clusterlens.flow.losses import MODE_NAMES, LocalityFlowMatching
from clusterlens.flow.networks import build_network
from clusterlens.flow.pairing import pair_by_sample_ids
from clusterlens.models.checkpoints import load_checkpoint

MATCHERS = ("ours", "icfm", "otcfm")
CSV_COLUMNS = (
    "step",
    "loss",
    "loss_flow",
    "loss_locality",
    "locality_target_diff",
    "locality_mode",
    "locality_valid_pairs",
    "locality_valid_ratio",
    "locality_n_unique_clusters",
)
# Fields that may change between a run and its resumption.
RESUMABLE_CHANGES = ("steps", "log_every", "checkpoint_every")
#: What save_checkpoint writes; a file lacking any of these is not a flow run's checkpoint.
CHECKPOINT_KEYS = ("model", "optimizer", "step", "generator", "config", "sample_shape")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json``)."""

    data: str = "moons"
    source: str = "normal"
    locality: str = "none"
    locality_weight: float = 1.0
    noise_scale: float = 0.1
    clusters: str | None = None
    matcher: str = "ours"
    batch_size: int = 256
    steps: int = 2000
    lr: float = 1e-3
    width: int = 128
    depth: int = 3
    seed: int = 0
    n_train: int = 20000
    n_test: int = 2000
    data_seed: int = 0
    image_size: int = 32
    log_every: int = 50
    checkpoint_every: int = 500

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what is accepted."""
        # The loss checks its own settings (mode, weight >= 0, noise scale > 0).
        LocalityFlowMatching(self.locality, self.locality_weight, self.noise_scale)
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, got {self.matcher!r}")
        if self.matcher != "ours" and self.locality != "none":
            raise ValueError(f"the torchcfm matcher {self.matcher!r} runs without locality")
        if self.locality == "cluster" and not self.clusters:
            raise ValueError("--locality cluster needs --clusters DIR (from flow encode-cluster)")
        if self.source not in SOURCES:
            raise ValueError(f"--source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        for name in ("steps", "log_every", "checkpoint_every", "width", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


class Trainer:
    """One training run: data, network, optimizer, loss, logs. See the module docstring.

    Args:
        config: The run's settings.
        out_dir: The run folder (created; resumed when it holds a checkpoint).
        device: Torch device.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path, device: str = "cpu") -> None:
        config.validate()
        self.config, self.out, self.device = config, Path(out_dir), device
        self.dataset = dataset_for(config)
        torch.manual_seed(config.seed)
        self.model = build_network(
            self.dataset.sample_shape, width=config.width, depth=config.depth
        ).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.loss_fn = LocalityFlowMatching(
            config.locality, config.locality_weight, config.noise_scale
        )
        self.cluster_of_sample = self._cluster_table()
        self.batches = BatchStream(len(self.dataset.train), config.batch_size, config.seed)
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        self.step = 0
        self.matcher = _torchcfm_matcher(config.matcher)

    def _cluster_table(self) -> torch.Tensor | None:
        if self.config.locality != "cluster":
            return None
        assignments = load_clusters(self.config.clusters)
        made_from = (assignments.summary.get("data"), assignments.summary.get("data_meta"))
        if made_from != (self.dataset.name, self.dataset.meta):
            raise ValueError(
                f"clusters in {self.config.clusters} were made from {made_from[0]!r} "
                f"{made_from[1]}, but training uses {self.dataset.name!r} {self.dataset.meta}; "
                "re-run encode-cluster with the same data options"
            )
        return torch.from_numpy(assignments.labels_for(self.dataset.ids))

    # -- one step ---------------------------------------------------------------------------

    def train_step(self) -> dict[str, float | str]:
        """Draw batch number ``self.step``, take one optimizer step, return its metrics."""
        indices = self.batches.indices(self.step)
        x1 = self.dataset.train[indices]
        x0 = sample_source(self.config.source, self.dataset.sample_shape, len(x1), self.generator)
        t = torch.rand(len(x1), generator=self.generator)
        if self.matcher is not None:
            loss, metrics = self._torchcfm_loss(x0, x1, t)
        else:
            loss, metrics = self._locality_loss(indices, x0, x1, t)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return metrics

    def _locality_loss(self, indices, x0, x1, t):
        pairing = perturbation = None
        if self.config.locality == "cluster":
            pairing = pair_by_sample_ids(indices, self.cluster_of_sample, self.generator)
            pairing.mate, pairing.valid = (
                pairing.mate.to(self.device),
                pairing.valid.to(self.device),
            )
        elif self.config.locality == "random":
            perturbation = torch.randn(x0.shape, generator=self.generator).to(self.device)
        to = self.device
        result = self.loss_fn(
            self.model, x0.to(to), x1.to(to), t.to(to), pairing=pairing, perturbation=perturbation
        )
        return result.loss, result.metrics

    def _torchcfm_loss(self, x0, x1, t):
        # torchcfm's OT sampler draws pairs from the plan with numpy's global generator;
        # seeding it from (seed, step) keeps runs reproducible across resumption.
        np.random.seed((self.config.seed * 1_000_003 + self.step) % 2**32)  # noqa: NPY002
        t, x_t, u_t = self.matcher.sample_location_and_conditional_flow(x0, x1, t=t)
        to = self.device
        loss = (self.model(x_t.to(to), t.to(to)) - u_t.to(to)).pow(2).mean()
        return loss, {
            "loss": loss.item(),
            "loss_flow": loss.item(),
            "locality_mode": f"torchcfm_{self.config.matcher}",
        }

    # -- checkpoints ------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (a crash mid-write keeps the previous one)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "generator": self.generator.get_state(),
            "config": asdict(self.config),
            "sample_shape": list(self.dataset.sample_shape),
        }
        partial = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, partial)
        partial.replace(self.checkpoint_path)

    def load_checkpoint(self) -> None:
        state = read_checkpoint(self.checkpoint_path, self.device)
        saved = TrainConfig.from_dict(state["config"])
        changed = [
            f.name
            for f in fields(TrainConfig)
            if f.name not in RESUMABLE_CHANGES
            and getattr(saved, f.name) != getattr(self.config, f.name)
        ]
        if changed:
            details = ", ".join(
                f"{name}: {getattr(saved, name)!r} -> {getattr(self.config, name)!r}"
                for name in changed
            )
            raise ValueError(
                f"{self.out} holds a run with different settings ({details}); "
                "use another --out or the same settings to resume"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.step = int(state["step"])
        except (RuntimeError, TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{self.checkpoint_path} does not fit this run: {err}") from err

    # -- the loop ---------------------------------------------------------------------------

    def run(self, progress: bool = True) -> dict:
        """Train up to ``config.steps`` (resuming if a checkpoint exists); return a summary."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.checkpoint_path.exists():
            self.load_checkpoint()
        (self.out / "config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        log = MetricLog(self.out, self.step)
        window: list[dict] = []
        bar = tqdm(
            total=self.config.steps,
            initial=self.step,
            disable=not progress,
            desc=f"flow {MODE_NAMES.get(self.config.locality)}",
        )
        try:
            while self.step < self.config.steps:
                window.append(self.train_step())
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                    log.write(self.step, window)
                    bar.set_postfix(loss=f"{window[-1]['loss']:.4f}")
                    window = []
                if self.step % self.config.checkpoint_every == 0:
                    self.save_checkpoint()
            self.save_checkpoint()
        finally:
            bar.close()
            log.close()
        return {"out": str(self.out), "steps": self.step, "last": log.last}


def dataset_for(config: TrainConfig) -> FlowDataset:
    """The data set a config names (same spec -> same samples and ids)."""
    return load_dataset(
        config.data,
        n_train=config.n_train,
        n_test=config.n_test,
        data_seed=config.data_seed,
        image_size=config.image_size,
    )


def _torchcfm_matcher(name: str):
    if name == "ours":
        return None
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )

    if name == "icfm":
        return ConditionalFlowMatcher(0.0)
    return ExactOptimalTransportConditionalFlowMatcher(0.0)


class MetricLog:
    """Interval means of the step metrics to ``metrics.csv`` and TensorBoard.

    Args:
        out: Run folder.
        start_step: Step the run (re)starts at; later rows of an earlier attempt are dropped.
    """

    def __init__(self, out: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = out / "metrics.csv"
        kept = []
        if self.path.exists() and start_step > 0:
            with open(self.path, newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["step"]) <= start_step]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        self.writer = SummaryWriter(str(out / "tensorboard"), purge_step=start_step or None)
        self.last: dict = {}
        self._mode_written = False

    def write(self, step: int, window: list[dict]) -> None:
        """Append the mean of ``window``'s numeric metrics as the row for ``step``."""
        row: dict[str, float | str] = {"step": step, "locality_mode": window[-1]["locality_mode"]}
        for name in CSV_COLUMNS[1:]:
            values = [m[name] for m in window if name in m and not isinstance(m[name], str)]
            if values:
                row[name] = float(np.mean(values))
                self.writer.add_scalar(f"training/{name}", row[name], step)
        if not self._mode_written:
            self.writer.add_text("training/locality_mode", str(row["locality_mode"]), step)
            self._mode_written = True
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, CSV_COLUMNS).writerow(row)
        self.last = row

    def close(self) -> None:
        self.writer.close()


def train(
    config: TrainConfig, out_dir: str | Path, *, device: str = "cpu", progress: bool = True
) -> dict:
    """Train (or resume) a run in ``out_dir``; see :class:`Trainer`.

    Args:
        config: Run settings.
        out_dir: Run folder.
        device: Torch device.
        progress: Show a progress bar.

    Returns:
        ``{"out", "steps", "last"}`` with the last logged metrics row.
    """
    return Trainer(config, out_dir, device).run(progress=progress)


def load_run(out_dir: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, TrainConfig]:
    """Network (eval mode) and config of a trained run folder."""
    path = Path(out_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint.pt in {out_dir}: train a run there first")
    state = read_checkpoint(path, device)
    try:
        config = TrainConfig.from_dict(state["config"])
        model = build_network(tuple(state["sample_shape"]), width=config.width, depth=config.depth)
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a usable flow checkpoint: {err}") from err
    return model.to(device).eval(), config


def read_checkpoint(path: Path, device: str = "cpu") -> dict:
    """The state dict that :meth:`Trainer.save_checkpoint` wrote, loaded without running code.

    ``weights_only=True`` unpickles nothing but tensors, numbers, strings and plain
    containers, which is all a checkpoint holds (the config is saved as a dict), so no
    extra safe globals are registered: anything else in the file is refused.

    Raises:
        ValueError: the file refers to other objects (possibly code), is truncated or is
            not a torch file, or lacks the keys of a flow checkpoint.
    """
    state = load_checkpoint(
        path,
        "flow checkpoint",
        "only checkpoints written by `clusterlens flow train` are accepted",
        device,
    )
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(
            f"{path} is not a clusterlens flow checkpoint: it lacks {', '.join(missing)} "
            "(written by `clusterlens flow train`)"
        )
    return state
