"""Train a narrow ultralytics YOLO *segment* model on the derived CamVid instances.

The architecture is ultralytics' own YOLOv8-seg layout at depth 0.33 and width 0.1875
(channels 16..192 instead of v8n's 16..256): 1,980,271 parameters with 5 classes,
about 4 MB as the half-precision checkpoint ultralytics saves, so it can ship in the
package (the goal is <= 5 MB). It is written to ``<out>/model.yaml`` and built with
random weights: nothing is downloaded.

Everything lives in ``<out>``: ``model.yaml``, ultralytics' ``args.yaml``,
``results.csv`` and ``weights/{last,best}.pt``, and ``state.json`` -- the settings, the
epochs done, and the SHA-256 of ``last.pt`` as this run wrote it. Running again with the
same ``out`` resumes from ``last.pt`` (ultralytics ``resume``), and only from a
``last.pt`` whose hash matches: ultralytics checkpoints are pickles, and a file swapped
in by someone else is not unpickled. A finished run is reported, not retrained.

At the end, ``best.pt`` is exported once into clusterlens' safe YOLO format,
``<out>/camvid_detector.pt`` (tensors and plain data, loaded with ``weights_only=True``;
``yolo:<out>/camvid_detector.pt``), with ``camvid_detector.json`` beside it: settings,
epochs, training time and the final validation. Rerunning the command on a run that
finished before this step existed exports it. Only a ``best.pt`` whose SHA-256 matches
the one recorded at the end of training is unpickled for this (runs finished before
that hash was recorded are the user's own folder and exported as they are).

Ultralytics is kept offline while training: ``YOLO_OFFLINE`` (no analytics, no update
check), no plots, its font fetch (``check_font``) replaced by a no-op, and its AMP check
(which downloads ``yolo26n.pt`` on CUDA) replaced by its outcome without the download:
AMP off on CPU, on for CUDA.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clusterlens.catalog.camvid_instances import InstanceReport, derive_camvid_instances

#: Depth / width multiples of the shipped architecture (YOLOv8-seg layout).
DEPTH, WIDTH = 0.33, 0.1875
STATE = "state.json"
SAFE_NAME = "camvid_detector"
DEFAULT_DATASET = Path("outputs/camvid-yolo")
#: Settings a resumed run keeps from the run it continues.
_FIXED_ON_RESUME = ("epochs", "imgsz", "batch", "width", "seed", "min_area", "data_yaml")


@dataclass
class DetectorRun:
    """The state of a training run in ``out`` (what ``state.json`` holds).

    Attributes:
        out: the run folder.
        settings: epochs, imgsz, batch, width, seed, min_area, data_yaml, device.
        parameters: parameter count of the network.
        epochs_done: epochs finished and saved in ``weights/last.pt``.
        finished: True once ultralytics finished and validated ``best.pt``.
        resumed: True when this call continued an interrupted run.
        metrics: final validation of ``best.pt`` (ultralytics keys, e.g.
            ``metrics/mAP50(B)``, ``metrics/mAP50(M)``) and per-class box / mask mAP50.
        best_sha256: SHA-256 of ``best.pt`` as training left it (None: not finished, or
            finished before this was recorded).
    """

    out: Path
    settings: dict[str, Any]
    parameters: int
    epochs_done: int = 0
    finished: bool = False
    resumed: bool = False
    last_sha256: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    best_sha256: str | None = None

    @property
    def best(self) -> Path:
        return self.out / "weights" / "best.pt"

    @property
    def last(self) -> Path:
        return self.out / "weights" / "last.pt"

    @property
    def safe_checkpoint(self) -> Path:
        """``best.pt`` in the safe format (written by :func:`export_safe`)."""
        return self.out / f"{SAFE_NAME}.pt"

    def save(self) -> None:
        derived = ("out", "resumed", "safe_checkpoint")
        state = {key: value for key, value in self.to_json().items() if key not in derived}
        tmp = self.out / (STATE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.out / STATE)  # atomic: a kill never leaves half a state file

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "settings": self.settings,
            "parameters": self.parameters,
            "epochs_done": self.epochs_done,
            "finished": self.finished,
            "resumed": self.resumed,
            "last_sha256": self.last_sha256,
            "metrics": self.metrics,
            "best_sha256": self.best_sha256,
            "safe_checkpoint": str(self.safe_checkpoint)
            if self.safe_checkpoint.is_file()
            else None,
        }


def model_config(num_classes: int, width: float = WIDTH) -> dict[str, Any]:
    """The YOLOv8-seg layout from ultralytics' own config, at ``DEPTH`` and ``width``."""
    import ultralytics

    if not 0 < width <= 1:
        raise ValueError(f"width must be in (0, 1], got {width}")
    path = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8-seg.yaml"
    config = yaml.safe_load(path.read_text())
    config.pop("scales")  # explicit multiples instead of a scale guessed from the file name
    config.update(nc=num_classes, depth_multiple=DEPTH, width_multiple=width)
    return config


def count_parameters(config: dict[str, Any]) -> int:
    """Parameter count of the network ``config`` describes (built, not trained)."""
    from clusterlens.models.yolo import ultralytics_offline

    ultralytics_offline()
    from ultralytics.nn.tasks import SegmentationModel

    model = SegmentationModel(dict(config), nc=config["nc"], verbose=False)
    return sum(parameter.numel() for parameter in model.parameters())


def train_detector(
    out: str | os.PathLike,
    dataset: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    epochs: int | None = None,
    imgsz: int | None = None,
    batch: int | None = None,
    device: str = "cpu",
    width: float | None = None,
    seed: int | None = None,
    min_area: int | None = None,
    callbacks: dict[str, Callable[[Any], None]] | None = None,
) -> DetectorRun:
    """Train (or resume, or report) the CamVid instance-segmentation detector.

    Args:
        out: run folder; rerun with the same folder to resume an interrupted run.
        dataset: folder of the derived YOLO data set; derived from CamVid if missing.
            None: the run's own on resume, else ``outputs/camvid-yolo``.
        data: the CamVid folder or its parent (see :func:`derive_camvid_instances`).
        epochs, imgsz, batch, width, seed: training settings; None takes the
            interrupted run's value on resume, else 30, 480, 8, ``WIDTH``, 0.
        device: ``cpu``, ``cuda``, ``0`` ... (may change on resume).
        min_area: passed to the derivation (None: its default).
        callbacks: extra ultralytics callbacks, event -> function (e.g. progress).

    Raises:
        ValueError: a resume asked to change a fixed setting, a ``last.pt`` that this run
            did not write, or bad settings.
        FileNotFoundError: no CamVid data to derive the data set from.

    A finished run is exported with :func:`export_safe` (once; later calls report it).
    """
    _check_device(device)
    out = Path(out).absolute()
    requested = {"epochs": epochs, "imgsz": imgsz, "batch": batch, "width": width, "seed": seed}
    requested["min_area"] = min_area
    if dataset is not None:
        requested["data_yaml"] = str(Path(dataset).absolute() / "data.yaml")
    previous = _load_state(out)
    if previous is not None and (previous.finished or previous.epochs_done > 0):
        _check_unchanged(previous, requested)
        # no new derivation: relabelling under a half-trained model would mix two data sets
        run = previous if previous.finished else _resume(previous, device, callbacks)
    else:
        derived = _derive(DEFAULT_DATASET if dataset is None else dataset, data, min_area)
        requested.update(min_area=derived.min_area, data_yaml=str(derived.data_yaml))
        run = _start(out, requested, device, len(derived.classes), callbacks)
    if run.finished:
        export_safe(run)
    return run


def export_safe(run: DetectorRun) -> Path:
    """Write ``best.pt`` of a finished run in the safe YOLO format, plus its metadata JSON.

    Returns ``run.safe_checkpoint``; existing files are kept (a finished run's
    ``best.pt`` no longer changes), a missing one is written.

    Raises:
        ValueError: the run is not finished, or ``best.pt`` is missing or is not the
            file training left (its SHA-256 differs from the recorded one).
    """
    from clusterlens.models.yolo_checkpoint import convert_ultralytics_checkpoint

    if not run.finished:
        raise ValueError(f"the run in {run.out} has not finished; nothing to export yet")
    if not run.safe_checkpoint.is_file():
        if run.best_sha256 is None and run.best.is_file():
            # a run finished before hashes were recorded: nothing proves the file is the one
            # training wrote, so unpickling it is the user's explicit decision
            raise ValueError(
                f"{STATE} in {run.out} records no SHA-256 of {run.best.name}, so it will not "
                f"be unpickled; if you trust the file: clusterlens convert-yolo {run.best} "
                f"{run.safe_checkpoint} --trust-source"
            )
        if not run.best.is_file() or _sha256(run.best) != run.best_sha256:
            raise ValueError(
                f"{run.best} is missing or is not the checkpoint this run's training left "
                f"(SHA-256 differs from {STATE}); it will not be unpickled"
            )
        about = {"imgsz": int(run.settings["imgsz"]), "epochs": run.epochs_done}
        # trust_source: the file is this run's own output, checked against its recorded hash
        convert_ultralytics_checkpoint(run.best, run.safe_checkpoint, True, metadata=about)
    metadata = run.safe_checkpoint.with_suffix(".json")
    if not metadata.is_file():  # also after a kill between the two writes
        _write_json(metadata, export_metadata(run))
    return run.safe_checkpoint


def export_metadata(run: DetectorRun) -> dict[str, Any]:
    """What the exported detector's JSON records: settings, size, time and validation."""
    settings = {key: value for key, value in run.settings.items() if key != "data_yaml"}
    return {
        "architecture": "ultralytics YOLOv8-seg",
        "depth_multiple": DEPTH,
        "width_multiple": run.settings.get("width", WIDTH),
        "parameters": run.parameters,
        "settings": settings,
        "epochs": run.epochs_done,
        "train_time_s": training_seconds(run.out / "results.csv"),
        "checkpoint_bytes": run.safe_checkpoint.stat().st_size,
        "checkpoint_sha256": _sha256(run.safe_checkpoint),
        "best_pt_sha256": _sha256(run.best),
        "val_final": run.metrics,
        "val_final_source": "ultralytics' final validation of best.pt at the end of training "
        "(val split of the derived data set)",
    }


def validate_detector(
    checkpoint: str | os.PathLike,
    data_yaml: str | os.PathLike = DEFAULT_DATASET / "data.yaml",
    imgsz: int = 320,
    batch: int = 16,
    split: str = "val",
    device: str = "cpu",
) -> dict[str, Any]:
    """Ultralytics' own validation of a safe-format detector on a split of a YOLO data set.

    The network is rebuilt from ``checkpoint`` (``weights_only=True``, float32) and handed
    to ultralytics' ``DetectionValidator`` / ``SegmentationValidator`` (conf 0.001,
    IoU 0.7, rectangular batches: the settings of the final validation in training).

    Returns:
        ultralytics' overall keys (``metrics/mAP50(B)``, ``metrics/mAP50-95(M)`` ...), and
        per class ``per_class/<name>/mAP50(B)`` ... plus its ``instances`` and ``images``.
    """
    from clusterlens.models.yolo_checkpoint import load_yolo_checkpoint

    _check_device(device)
    model, task = load_yolo_checkpoint(checkpoint)
    args = {"data": str(data_yaml), "imgsz": imgsz, "batch": batch, "split": split}
    # rect: rectangular val batches, as the final validation in training builds them
    args.update(device=device, plots=False, workers=0, verbose=False, task=task, rect=True)
    with _offline_training(), _ultralytics_output_to_stderr():
        from ultralytics.models.yolo.detect import DetectionValidator
        from ultralytics.models.yolo.segment import SegmentationValidator

        validator = (SegmentationValidator if task == "segment" else DetectionValidator)(args=args)
        overall = validator(model=model)
    metrics = {key: float(value) for key, value in overall.items() if key.startswith("metrics/")}
    return {**metrics, **_per_class(validator)}


@contextmanager
def _ultralytics_output_to_stderr() -> Iterator[None]:
    """Ultralytics logs and draws progress on stdout; keep stdout for the caller's JSON."""
    import contextlib
    import logging
    import sys

    from ultralytics.utils import LOGGER

    handlers = [
        handler
        for handler in LOGGER.handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout
    ]
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler in handlers:
            handler.setStream(sys.stdout)


def _per_class(validator) -> dict[str, Any]:
    """Box (and mask) mAP50 / mAP50-95, instance and image counts for every scored class."""
    result, names = validator.metrics, validator.names
    kinds = [("B", result.box)] + ([("M", result.seg)] if hasattr(result, "seg") else [])
    per_class = {}
    for index, class_index in enumerate(result.ap_class_index):
        name = names[int(class_index)]
        per_class[f"per_class/{name}/instances"] = int(result.nt_per_class[class_index])
        per_class[f"per_class/{name}/images"] = int(result.nt_per_image[class_index])
        for suffix, kind in kinds:
            per_class[f"per_class/{name}/mAP50({suffix})"] = float(kind.ap50[index])
            per_class[f"per_class/{name}/mAP50-95({suffix})"] = float(kind.ap[index])
    return per_class


def training_seconds(results_csv: Path) -> float | None:
    """Seconds of training (epochs and their validation) from ultralytics' ``results.csv``.

    Its ``time`` column counts from the start of each training session and restarts on
    resume, so the total is the sum of each session's last value.
    """
    if not results_csv.is_file():
        return None
    with results_csv.open() as handle:
        times = [float(row["time"]) for row in csv.DictReader(handle) if row.get("time")]
    sessions, previous = [], float("-inf")
    for value in times:
        if value < previous:  # a resumed session started its clock again
            sessions.append(previous)
        previous = value
    return round(sum(sessions) + (previous if times else 0.0), 1)


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


def _derive(dataset, data, min_area) -> InstanceReport:
    kwargs = {} if min_area is None else {"min_area": min_area}
    report = derive_camvid_instances(dataset, data=data, splits=("train", "val"), **kwargs)
    if not report.images.get("train") or not report.images.get("val"):
        raise ValueError(f"the derived data set {report.out} needs train and val images")
    return report


def _start(out, requested, device, num_classes, callbacks) -> DetectorRun:
    settings = {"epochs": 30, "imgsz": 480, "batch": 8, "width": WIDTH, "seed": 0}
    settings.update({key: value for key, value in requested.items() if value is not None})
    _check_settings(settings)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the run")
    out.mkdir(parents=True, exist_ok=True)
    config = model_config(num_classes, settings["width"])
    (out / "model.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run = DetectorRun(out, {**settings, "device": device}, count_parameters(config))
    run.save()
    with _offline_training():
        from ultralytics import YOLO

        model = YOLO(str(out / "model.yaml"), task="segment")
        _add_callbacks(model, run, callbacks)
        model.train(
            data=settings["data_yaml"],
            epochs=settings["epochs"],
            imgsz=settings["imgsz"],
            batch=settings["batch"],
            seed=settings["seed"],
            device=device,
            save_dir=str(out),
            pretrained=False,  # random init from model.yaml: nothing to download
            workers=0,  # no dataloader processes: this runs beside other jobs
            plots=False,  # plotting fetches a font
            deterministic=True,
            exist_ok=True,
            verbose=False,
        )
    return run


def _resume(previous, device, callbacks) -> DetectorRun:
    if not Path(previous.settings["data_yaml"]).is_file():
        raise FileNotFoundError(
            f"the run in {previous.out} trains on {previous.settings['data_yaml']}, which is gone; "
            "derive it again with the same settings or start in a new --out"
        )
    if previous.epochs_done >= previous.settings["epochs"]:
        # ultralytics strips last.pt / best.pt before its final validation: nothing to resume
        raise ValueError(
            f"the run in {previous.out} trained all {previous.epochs_done} epochs and was "
            f"stopped during its final validation; the weights are in {previous.best} "
            "(not validated here). Give a new --out to train again"
        )
    if not previous.last.is_file() or _sha256(previous.last) != previous.last_sha256:
        # also the outcome of a kill in the moment between ultralytics writing last.pt
        # and this run recording its hash: refusing is the safe side of that race
        raise ValueError(
            f"{previous.last} is missing or is not the checkpoint this run saved after epoch "
            f"{previous.epochs_done} (SHA-256 differs from {STATE}); it will not be "
            "unpickled. Start again in a new --out"
        )
    run = previous
    run.resumed = True
    run.settings["device"] = device
    with _offline_training():
        from ultralytics import YOLO

        model = YOLO(str(run.last), task="segment")
        _add_callbacks(model, run, callbacks)
        model.train(
            resume=True,
            data=run.settings["data_yaml"],
            device=device,
            save_dir=str(run.out),
            workers=0,
            plots=False,
        )
    return run


def _check_device(device: str) -> None:
    """Fail before any work for an accelerator that is not there."""
    import torch

    wants_cuda = device.startswith("cuda") or device.replace(",", "").isdigit()
    if wants_cuda and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device here; use --device cpu")


def _check_settings(settings: dict[str, Any]) -> None:
    for key in ("epochs", "imgsz", "batch"):
        if int(settings[key]) < 1:
            raise ValueError(f"--{key} must be at least 1, got {settings[key]}")
    if settings["imgsz"] % 32:
        raise ValueError(f"--imgsz must be a multiple of 32 (the stride), got {settings['imgsz']}")


def _check_unchanged(previous: DetectorRun, requested: dict[str, Any]) -> None:
    changed = {
        key: (previous.settings.get(key), value)
        for key, value in requested.items()
        if key in _FIXED_ON_RESUME and value is not None and value != previous.settings.get(key)
    }
    if changed:
        what = ", ".join(f"{key} {old} -> {new}" for key, (old, new) in changed.items())
        state = "finished" if previous.finished else "interrupted"
        raise ValueError(
            f"{previous.out} holds a {state} run with other settings ({what}); "
            "drop these options to continue it, or give a new --out"
        )


def _add_callbacks(model, run: DetectorRun, extra) -> None:
    """Record progress in ``state.json`` as ultralytics saves, then the user's callbacks."""

    def saved(trainer) -> None:
        run.epochs_done = trainer.epoch + 1
        run.last_sha256 = _sha256(run.last)
        run.save()

    def finished(trainer) -> None:
        run.finished = True
        run.epochs_done = max(run.epochs_done, int(trainer.epoch) + 1)
        run.last_sha256 = _sha256(run.last)  # final_eval strips the optimizer: new bytes
        run.best_sha256 = _sha256(run.best)  # export_safe unpickles only this file
        run.metrics = _final_metrics(trainer)
        run.save()

    model.add_callback("on_model_save", saved)
    model.add_callback("on_train_end", finished)
    for event, function in (extra or {}).items():
        model.add_callback(event, function)


def _final_metrics(trainer) -> dict[str, Any]:
    """Overall metrics and per-class box / mask mAP50 and mAP50-95 of the final validation."""
    metrics = {key: float(value) for key, value in (trainer.metrics or {}).items()}
    result = getattr(trainer.validator, "metrics", None)
    if result is not None and hasattr(result, "seg"):
        names = trainer.validator.names
        for index, class_index in enumerate(result.ap_class_index):
            name = names[int(class_index)]
            metrics[f"per_class/{name}/mAP50(B)"] = float(result.box.ap50[index])
            metrics[f"per_class/{name}/mAP50(M)"] = float(result.seg.ap50[index])
            metrics[f"per_class/{name}/mAP50-95(B)"] = float(result.box.ap[index])
            metrics[f"per_class/{name}/mAP50-95(M)"] = float(result.seg.ap[index])
    return metrics


def _load_state(out: Path) -> DetectorRun | None:
    try:
        state = json.loads((out / STATE).read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise ValueError(f"{out / STATE} is damaged ({err}); give a new --out") from err
    return DetectorRun(out=out, **state)


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _amp_without_download(model) -> bool:
    """Ultralytics' answer without its check: no AMP on CPU / MPS, AMP on accelerators.

    The real check runs a downloaded ``yolo26n.pt`` on CUDA to compare AMP with FP32.
    """
    device = next(model.parameters()).device
    return device.type not in ("cpu", "mps")


@contextmanager
def _offline_training() -> Iterator[None]:
    """Patch the two places ultralytics training would reach the network, then restore."""
    from clusterlens.models.yolo import ultralytics_offline

    ultralytics_offline()
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer_module

    saved = data_utils.check_font, trainer_module.check_amp
    data_utils.check_font = lambda *args, **kwargs: None  # only plots use the font
    trainer_module.check_amp = _amp_without_download
    try:
        yield
    finally:
        data_utils.check_font, trainer_module.check_amp = saved
