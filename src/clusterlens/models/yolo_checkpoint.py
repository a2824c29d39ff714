"""YOLO checkpoints that load without unpickling code: tensors and plain data only.

An ultralytics checkpoint (``yolov8n-seg.pt``, a training run's ``best.pt``) is a pickle
of the model *object*: loading it runs whatever the file names, so a crafted one runs
code. clusterlens therefore loads YOLO weights only from its own format, a
``torch.save`` of a dict that ``torch.load(weights_only=True)`` can read::

    {
        "format": "clusterlens-yolo", "version": 1,
        "task": "segment",                    # or "detect"
        "architecture": {...},                # the ultralytics model.yaml dict
        "names": ["Car", "Pedestrian", ...],  # class id -> name
        "loss_gains": {"box": 7.5, "cls": 0.5, "dfl": 1.5},
        "state_dict": {...},                  # fp16 or fp32 tensors, loaded as fp32
        "metadata": {...},                    # plain data, e.g. the training image size
    }

The network is rebuilt from the architecture dict by ultralytics (``DetectionModel`` /
``SegmentationModel``) and the state dict is loaded strictly. The architecture dict
comes from the file too, and ultralytics' builder ``eval``-s its ``activation`` entry
and calls any name of its module namespace as a layer, so both are checked first
(:func:`check_architecture`).

An ultralytics-native file is converted once, as an explicit decision by someone who
trusts where it came from (:func:`convert_ultralytics_checkpoint`, ``clusterlens
convert-yolo SRC DST --trust-source``).

Example:
    >>> from clusterlens.models.yolo_checkpoint import load_yolo_checkpoint
    >>> model, task = load_yolo_checkpoint("camvid_detector.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import importlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from clusterlens.atomic import replace_atomically
from clusterlens.models.checkpoints import load_checkpoint

FORMAT = "clusterlens-yolo"
VERSION = 1
TASKS = ("detect", "segment")
LOSS_GAINS = ("box", "cls", "dfl")
WHAT = "YOLO checkpoint"

# an activation ultralytics may eval: a torch.nn class called with numbers only
_ACTIVATION = re.compile(r"^(?:torch\.)?nn\.(\w+)\(\s*[-+0-9.eE,\s]*\)$")
_LAYER = re.compile(r"^(?:nn\.|torchvision\.ops\.)?[A-Za-z_]\w*$")


def convert_hint(path: str | os.PathLike) -> str:
    """What to run to turn the ultralytics checkpoint ``path`` into the safe format."""
    safe = Path(path).with_name(Path(path).stem + "-safe.pt")
    return (
        f"if you trust where it came from, convert it once with 'clusterlens convert-yolo "
        f"{path} {safe} --trust-source' (this rebuilds the network objects it pickles) "
        f"and load 'yolo:{safe}'"
    )


# -- saving ----------------------------------------------------------------------------


def checkpoint_dict(
    model: torch.nn.Module, half: bool = True, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The safe-format dict of an ultralytics ``DetectionModel`` / ``SegmentationModel``.

    Args:
        model: the network; its ``yaml``, ``names`` and ``args`` (loss gains) are stored.
        half: store floating-point tensors as fp16 (half the size; ultralytics itself
            saves its checkpoints in fp16, so converting those loses nothing).
        metadata: plain data stored alongside (numbers, strings, lists, dicts).
    """
    task = head_task(model)
    if task not in TASKS:
        raise ValueError(f"only detect / segment YOLO models are supported, got a {task!r} model")
    architecture = copy.deepcopy(dict(model.yaml))
    architecture.pop("yaml_file", None)  # a path on the machine that built it: no use elsewhere
    return {
        "format": FORMAT,
        "version": VERSION,
        "task": task,
        "architecture": architecture,
        "names": [str(model.names[index]) for index in range(len(model.names))],
        "loss_gains": _loss_gains(model),
        "state_dict": _plain_state_dict(model, half),
        "metadata": dict(metadata or {}),
    }


def save_yolo_checkpoint(
    model: torch.nn.Module,
    path: str | os.PathLike,
    half: bool = True,
    metadata: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``model`` in the safe format, atomically; returns the path.

    The file is read back with ``weights_only=True`` before it replaces ``path``, so a
    file that exists is always one the safe loader accepts.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
        ValueError: not a detect / segment model, or data that is not plain.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass force=True (--force) to overwrite it")
    checkpoint = checkpoint_dict(model, half, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_and_prove(temporary: Path) -> None:
        torch.save(checkpoint, temporary)
        load_checkpoint(temporary, WHAT)  # proves the file needs no unpickling of objects

    replace_atomically(path, write_and_prove)  # a kill never leaves half a checkpoint at path
    return path


def _loss_gains(model: torch.nn.Module) -> dict[str, float]:
    from ultralytics.utils import DEFAULT_CFG_DICT

    saved = getattr(model, "args", None) or {}
    saved = saved if isinstance(saved, dict) else vars(saved)
    return {key: float(saved.get(key, DEFAULT_CFG_DICT[key])) for key in LOSS_GAINS}


def _plain_state_dict(model: torch.nn.Module, half: bool) -> dict[str, torch.Tensor]:
    # clone: a view saves its whole underlying storage; half: only floating tensors
    return {
        name: (tensor.half() if half and tensor.is_floating_point() else tensor)
        .detach()
        .cpu()
        .clone()
        for name, tensor in model.state_dict().items()
    }


def head_task(model: torch.nn.Module) -> str:
    """``segment`` / ``detect`` from the head module, else the head's class name."""
    from ultralytics.nn.modules.head import Detect, Segment

    head = model.model[-1]
    if isinstance(head, Segment):
        return "segment"
    return "detect" if type(head) is Detect else type(head).__name__


# -- loading ---------------------------------------------------------------------------


def read_yolo_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checked safe-format dict in ``path`` (``weights_only=True``; nothing is built).

    Raises:
        ValueError: an ultralytics-native (pickled) checkpoint, any file that would need
            objects unpickled, a torch file of another layout, or a bad architecture.
    """
    try:
        checkpoint = load_checkpoint(path, WHAT, convert_hint(path))
    except ValueError as err:
        raise _refusal(path, err) from err
    _check_layout(checkpoint, path)
    check_architecture(checkpoint["architecture"])
    return checkpoint


def load_yolo_checkpoint(
    path: str | os.PathLike, device: str = "cpu"
) -> tuple[torch.nn.Module, str]:
    """Rebuild the network saved in ``path`` (float32, eval mode) and its task.

    The model gets ``names`` (id -> name) and ``args`` (the loss gains) as ultralytics'
    own loader would set them.

    Raises:
        ValueError: see :func:`read_yolo_checkpoint`; also weights that do not fit the
            architecture (missing, extra or mis-shaped tensors).
    """
    checkpoint = read_yolo_checkpoint(path)
    model = build_network(checkpoint["architecture"], checkpoint["task"], len(checkpoint["names"]))
    state = {
        name: tensor.float() if tensor.is_floating_point() else tensor
        for name, tensor in checkpoint["state_dict"].items()
    }
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[1:2] or [str(err)]
        raise ValueError(
            f"the {WHAT} {path} holds weights that do not fit its architecture: {first[0].strip()}"
        ) from err
    model.names = dict(enumerate(checkpoint["names"]))
    model.args = {**checkpoint["loss_gains"], "task": checkpoint["task"]}
    return model.to(device).float().eval(), checkpoint["task"]


def build_network(architecture: dict[str, Any], task: str, num_classes: int) -> torch.nn.Module:
    """Build the ultralytics network ``architecture`` describes, with throw-away weights.

    The random initialisation runs in a forked RNG so loading a model never changes the
    caller's random stream.
    """
    from clusterlens.models.yolo import ultralytics_offline

    ultralytics_offline()
    from ultralytics.nn.tasks import DetectionModel, SegmentationModel

    check_architecture(architecture)
    network = SegmentationModel if task == "segment" else DetectionModel
    channels = int(architecture.get("channels", 3))
    with torch.random.fork_rng():
        return network(copy.deepcopy(architecture), ch=channels, nc=num_classes, verbose=False)


def _refusal(path: str | os.PathLike, err: ValueError) -> ValueError:
    """Say plainly when the refused file is an ultralytics-native checkpoint."""
    try:
        # lists the names the pickle refers to by reading its opcodes: nothing is run
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError, OSError):
        needed = []
    ultralytics_names = [name for name in needed if name.startswith("ultralytics.")]
    if not ultralytics_names:
        return err
    # name the model class (ultralytics.nn.tasks.SegmentationModel) rather than a layer
    ultralytics_names.sort(key=lambda name: not name.startswith("ultralytics.nn.tasks."))
    return ValueError(
        f"refused to load the {WHAT} {path}: it is an ultralytics-native checkpoint, a "
        f"pickle of the model object (it refers to {ultralytics_names[0]}), and unpickling "
        f"it could run code; clusterlens loads YOLO weights only from its tensors-only format: "
        f"{convert_hint(path)}"
    )


def _check_layout(checkpoint: Any, path: str | os.PathLike) -> None:
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a torch file but not a clusterlens {WHAT} (no 'format': '{FORMAT}' "
            f"entry); {convert_hint(path)}"
        )
    if checkpoint.get("version") != VERSION:
        raise ValueError(
            f"{path} is a clusterlens {WHAT} of version {checkpoint.get('version')!r}; "
            f"this clusterlens reads version {VERSION}"
        )
    expected = {
        "task": str,
        "architecture": dict,
        "names": list,
        "loss_gains": dict,
        "state_dict": dict,
    }
    for key, kind in expected.items():
        if not isinstance(checkpoint.get(key), kind):
            raise ValueError(f"the {WHAT} {path} is damaged: '{key}' is not a {kind.__name__}")
    if checkpoint["task"] not in TASKS:
        raise ValueError(f"the {WHAT} {path} has task {checkpoint['task']!r}; supported: {TASKS}")
    if set(checkpoint["loss_gains"]) != set(LOSS_GAINS):
        raise ValueError(f"the {WHAT} {path} is damaged: loss gains must be {LOSS_GAINS}")


def check_architecture(architecture: dict[str, Any]) -> None:
    """Refuse an architecture dict that would make ultralytics' builder run code.

    The builder ``eval``-s ``activation`` and looks each layer's module name up in its
    own module namespace (which holds functions too) and calls it, so ``activation``
    must be a ``torch.nn`` class called with numbers, and every layer a ``torch.nn`` /
    ``torchvision.ops`` / ultralytics ``nn.Module`` class.

    Raises:
        ValueError: naming the first offending entry.
    """
    activation = architecture.get("activation")
    if activation is not None and not _is_plain_activation(activation):
        raise ValueError(
            f"YOLO architecture: activation {activation!r} is not a torch.nn activation "
            "called with numbers (ultralytics would eval it)"
        )
    layers = [*(architecture.get("backbone") or []), *(architecture.get("head") or [])]
    if not layers:
        raise ValueError("YOLO architecture: no 'backbone' / 'head' layers")
    for index, layer in enumerate(layers):
        _check_layer(index, layer)


def _is_plain_activation(activation: Any) -> bool:
    match = _ACTIVATION.match(activation) if isinstance(activation, str) else None
    return match is not None and _is_module_class(getattr(torch.nn, match.group(1), None))


def _check_layer(index: int, layer: Any) -> None:
    if not isinstance(layer, list) or len(layer) != 4:
        raise ValueError(f"YOLO architecture: layer {index} is not [from, repeats, module, args]")
    source, repeats, module, args = layer
    sources = source if isinstance(source, list) else [source]
    if not all(type(item) is int for item in sources) or type(repeats) is not int:
        raise ValueError(f"YOLO architecture: layer {index} has a bad 'from' or repeat count")
    if not isinstance(args, list):
        raise ValueError(f"YOLO architecture: layer {index} arguments are not a list")
    if not (isinstance(module, str) and _LAYER.match(module) and _layer_class(module)):
        raise ValueError(
            f"YOLO architecture: layer {index} module {module!r} is not a torch.nn, "
            "torchvision.ops or ultralytics network layer"
        )


def _layer_class(name: str) -> type | None:
    """The class ultralytics' builder would resolve ``name`` to, if it is a network layer."""
    import ultralytics.nn.tasks as tasks

    if name == "Silence":  # renamed by ultralytics itself to nn.Identity before building
        return torch.nn.Identity
    if name.startswith("nn."):
        found = getattr(torch.nn, name[3:], None)
    elif name.startswith("torchvision.ops."):
        import torchvision.ops

        found = getattr(torchvision.ops, name[len("torchvision.ops.") :], None)
    else:
        found = vars(tasks).get(name)
    return found if _is_module_class(found) else None


def _is_module_class(found: Any) -> bool:
    return isinstance(found, type) and issubclass(found, torch.nn.Module)


# -- converting ------------------------------------------------------------------------


def convert_ultralytics_checkpoint(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    trust_source: bool = False,
    force: bool = False,
    half: bool = True,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Convert an ultralytics-native ``.pt`` into the safe format; returns ``destination``.

    Converting rebuilds the network objects ``source`` pickles, with ``weights_only=True``
    and only the ``torch.nn`` / ``ultralytics.nn`` module classes it names allowed (any
    other name is refused); ``trust_source=True`` says the caller accepts that those
    classes are instantiated from the file.

    Args:
        source: the ultralytics checkpoint (``yolov8n-seg.pt``, ``runs/.../best.pt``).
        destination: the safe file to write (atomically).
        trust_source: must be True; the call refuses otherwise.
        force: overwrite an existing ``destination``.
        half: store fp16 tensors (ultralytics saves fp16: lossless for its files).
        metadata: plain data to store alongside; the source's file name and ultralytics
            version are added.

    Raises:
        PermissionError: ``trust_source`` is False.
        FileNotFoundError: no ``source``.
        FileExistsError: ``destination`` exists and ``force`` is False.
        ValueError: ``source`` is already in the safe format, or holds no detect / segment
            model.
    """
    source, destination = Path(source).expanduser(), Path(destination).expanduser()
    if not trust_source:
        raise PermissionError(
            f"converting {source} rebuilds the network objects it pickles (torch.nn and "
            "ultralytics.nn module classes only); do it only for a file whose origin you "
            "trust (your own training run, an official release), and say so with "
            "--trust-source (trust_source=True)"
        )
    if not source.is_file():
        raise FileNotFoundError(f"no checkpoint at {source.resolve()}")
    if destination.exists() and not force:
        raise FileExistsError(f"{destination} exists; pass --force (force=True) to overwrite it")
    if _is_safe_format(source):
        raise ValueError(f"{source} is already a clusterlens {WHAT}: nothing to convert")
    model, saved = _unpickle_ultralytics(source)
    about = {"converted_from": source.name, "ultralytics_version": str(saved.get("version", ""))}
    return save_yolo_checkpoint(model, destination, half, {**about, **(metadata or {})}, force)


def _is_safe_format(path: Path) -> bool:
    try:
        checkpoint = load_checkpoint(path, WHAT)
    except ValueError:
        return False
    return isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT


def _unpickle_ultralytics(source: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load an ultralytics checkpoint with ``weights_only=True``, allowing only the
    ``torch.nn`` and ``ultralytics.nn`` module classes the file names.

    The names are listed without unpickling (``get_unsafe_globals_in_checkpoint``); a
    file naming anything else (a function, another package) is refused, so nothing but
    module classes is ever built, and no ``__reduce__`` of the file's choosing runs.
    """
    from clusterlens.models.yolo import ultralytics_offline

    ultralytics_offline()
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(source))
    except (RuntimeError, ValueError) as err:  # not a torch.save zip file at all
        raise ValueError(f"{source} is not an ultralytics YOLO checkpoint: {err}") from err
    allowed = [_module_class(source, name) for name in names]
    try:
        with torch.serialization.safe_globals(allowed):
            saved = torch.load(source, map_location="cpu", weights_only=True)
        model = (saved.get("ema") or saved["model"]).float()
    except (pickle.UnpicklingError, RuntimeError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"{source} is not an ultralytics YOLO checkpoint: {err}") from err
    model.args = dict(saved.get("train_args") or {})  # the loss gains the safe file keeps
    return model, saved


def _module_class(source: Path, name: str) -> type:
    """The ``torch.nn`` / ``ultralytics.nn`` module class a checkpoint names, else refuse."""
    module_name, _, attribute = name.rpartition(".")
    if module_name.startswith(("torch.nn.modules.", "ultralytics.nn.")):
        found = getattr(importlib.import_module(module_name), attribute, None)
        if isinstance(found, type) and issubclass(found, torch.nn.Module):
            return found
    raise ValueError(
        f"{source} names {name!r}, which is not a torch.nn or ultralytics.nn module class; "
        "it is not converted (only network modules may be rebuilt from a checkpoint)"
    )
