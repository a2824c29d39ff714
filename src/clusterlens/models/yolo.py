"""Ultralytics YOLO detect / segment models, loaded offline (``yolo:<spec>``).

Specs:
    - ``camvid``: the CamVid road-scene detector trained by the project (YOLOv8-seg,
      5 classes: Car, Pedestrian, Bicyclist, SignSymbol, Pole), shipped in the package
      (``models/detector/camvid_detector.pt``; see docs/model-card-camvid-detector.md).
    - ``/path/to/weights.pt``: a checkpoint on disk in clusterlens' safe format
      (tensors and plain data, read with ``weights_only=True``; see
      :mod:`clusterlens.models.yolo_checkpoint`). An ultralytics-native checkpoint is a
      pickle that can run code when loaded: it is refused, with the command that
      converts it (``clusterlens convert-yolo SRC DST --trust-source``). Ultralytics
      would download a missing official checkpoint; here a missing file is a
      :class:`ModelNotFoundError` instead.
    - ``yolov8n-seg.yaml`` (any ultralytics model config, or a path to one): the
      untrained architecture from a seeded random initialisation (the same weights
      at every load) -- the real network and its real criterion, for tests and timing.

Nothing in ultralytics may reach the network at run time: :func:`ultralytics_offline`
sets ``YOLO_OFFLINE`` (no analytics, no asset downloads) and ``YOLO_AUTOINSTALL=False``
(no pip installs) before ultralytics is imported, undoes its global ``PIL.Image.open``
patch (which pip-installs a HEIF plugin on unreadable files),
and the catalog never calls the parts that fetch fonts or AMP-check weights (plotting,
the trainer).

Example:
    >>> from clusterlens.models.yolo import load_yolo
    >>> bundle = load_yolo("yolov8n-seg.yaml")  # doctest: +SKIP
    >>> bundle.task, len(bundle.names)  # doctest: +SKIP
    ('segment', 80)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from clusterlens.models._registry import ModelNotFoundError, UnknownModelError

SUPPORTED_TASKS = ("detect", "segment")
PACKAGE_DIR = Path(__file__).resolve().parent / "detector"
#: Detectors trained by the project and shipped in the package: ``yolo:<name>``.
BUNDLED = {"camvid": PACKAGE_DIR / "camvid_detector.pt"}


def ultralytics_offline() -> None:
    """Import ultralytics offline and undo its global ``PIL.Image.open`` patch.

    The environment variables only take effect before ultralytics' first import.
    Importing ultralytics replaces ``PIL.Image.open`` for the whole process with a
    wrapper that, on any file Pillow cannot identify, tries to pip-install a HEIF plugin
    (a network call, then an ImportError instead of Pillow's own error); loading a YOLO
    model must not change how every other part of the program reads images.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")  # never pip-install at run time
    import PIL.Image
    from ultralytics.utils import patches

    if PIL.Image.open is patches.image_open:
        PIL.Image.open = patches._image_open


@dataclass
class YoloBundle:
    """A YOLO network ready for feature, prediction and loss extraction.

    Attributes:
        model: the ultralytics ``DetectionModel`` / ``SegmentationModel`` (eval mode),
            with ``model.args`` holding the loss gains its criterion reads.
        task: ``"detect"`` or ``"segment"``.
        names: class id -> class name.
        name: the spec it was loaded from.
        random_weights: True for a ``.yaml`` architecture (untrained).
        hooked_layers: names of the modules whose outputs the catalog records:
            the backbone's last layer (the bottleneck) and every input of the head.
    """

    model: torch.nn.Module
    task: str
    names: dict[int, str]
    name: str
    random_weights: bool
    hooked_layers: list[str] = field(default_factory=list)

    @property
    def bottleneck_layer(self) -> str:
        """The hooked layer whose raw feature map is stored (the backbone's output)."""
        return self.hooked_layers[0]

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def stride(self) -> int:
        return int(self.model.stride.max())


def load_yolo(spec: str, device: str = "cpu") -> YoloBundle:
    """Load ``spec``: a bundled name, a safe-format ``.pt`` on disk or a ``.yaml`` architecture.

    Args:
        spec: see the module docstring.
        device: torch device.

    Raises:
        ModelNotFoundError: a ``.pt`` file (or a bundled detector) that does not exist;
            no download is tried.
        UnknownModelError: not a bundled name / ``.pt`` / ``.yaml`` spec, or not a
            detect / segment model.
        ValueError: a ``.pt`` that is not in the safe format (an ultralytics-native
            pickle is refused with the command that converts it).
    """
    ultralytics_offline()
    suffix = Path(spec).suffix.lower()
    if spec in BUNDLED:
        model, task = _load_checkpoint_file(BUNDLED[spec], spec)
    elif suffix == ".pt":
        model, task = _load_checkpoint_file(Path(spec).expanduser(), spec)
    elif suffix in (".yaml", ".yml"):
        model, task = _build_architecture(spec)
    else:
        raise UnknownModelError(
            f"yolo: expects a bundled detector ({', '.join(BUNDLED)}), a checkpoint "
            f"'/path/NAME.pt' or an architecture 'NAME.yaml' (e.g. yolov8n-seg.yaml), "
            f"got {spec!r}"
        )
    if task not in SUPPORTED_TASKS:
        raise UnknownModelError(f"{spec!r} is a {task!r} model; supported: detect, segment")
    model = model.to(device).float().eval()
    _attach_loss_settings(model)
    return YoloBundle(
        model=model,
        task=task,
        names={int(key): str(value) for key, value in model.names.items()},
        name=spec,
        random_weights=suffix in (".yaml", ".yml"),
        hooked_layers=default_hooked_layers(model),
    )


def _load_checkpoint_file(path: Path, spec: str) -> tuple[torch.nn.Module, str]:
    """A safe-format checkpoint (``weights_only=True``); never an ultralytics pickle."""
    from clusterlens.models.yolo_checkpoint import load_yolo_checkpoint

    if not path.is_file():
        if spec in BUNDLED:
            where = "the installed package lacks it; reinstall clusterlens"
        else:
            where = (
                "this machine cannot download it: copy the .pt file there and pass its path, "
                "or use an architecture such as 'yolo:yolov8n-seg.yaml' (random init)"
            )
        raise ModelNotFoundError(f"YOLO checkpoint {spec!r} not found at {path.resolve()}; {where}")
    return load_yolo_checkpoint(path)


def _build_architecture(spec: str) -> tuple[torch.nn.Module, str]:
    """The untrained network of an ultralytics config, from a seeded random init."""
    from ultralytics import YOLO

    try:
        # a .yaml architecture is seeded so every load gives the same random weights:
        # a build and a later distances run must see the same network
        with torch.random.fork_rng():
            torch.manual_seed(0)
            wrapper = YOLO(spec, verbose=False)
    except FileNotFoundError as err:
        raise UnknownModelError(
            f"ultralytics does not know the architecture {spec!r}: {err}"
        ) from err
    return wrapper.model, wrapper.task


def _attach_loss_settings(model: torch.nn.Module) -> None:
    """Give the model the hyper-parameters its training criterion reads (box/cls/dfl gains).

    A checkpoint stores its training arguments as a dict; the criterion wants the
    ultralytics config namespace. Per-instance masks (``overlap_mask=False``) keep one
    mask per label, which the catalog needs for per-image losses.
    """
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    saved = getattr(model, "args", None) or {}
    saved = saved if isinstance(saved, dict) else vars(saved)
    gains = {key: saved[key] for key in ("box", "cls", "dfl") if key in saved}
    model.args = get_cfg(DEFAULT_CFG, overrides={**gains, "overlap_mask": False})
    model.criterion = None  # rebuilt lazily with these settings


def default_hooked_layers(model: torch.nn.Module) -> list[str]:
    """Module names to hook: the backbone's last layer, then each head input (P3, P4, P5)."""
    backbone_last = len(model.yaml["backbone"]) - 1
    head_inputs = list(model.model[-1].f)
    return [f"model.{index}" for index in dict.fromkeys([backbone_last, *head_inputs])]


def list_yolo_specs() -> list[str]:
    """The bundled detectors present, then architectures that always load (random init).

    Other checkpoints are given by path.
    """
    bundled = [name for name, path in BUNDLED.items() if path.is_file()]
    return [*bundled, "yolov8n.yaml", "yolov8n-seg.yaml"]
