"""The safe YOLO checkpoint format: round trip, refusals, the converter, ``yolo:camvid``."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from clusterlens.cli.main import app
from clusterlens.models import load_model
from clusterlens.models.yolo import BUNDLED, list_yolo_specs, load_yolo
from clusterlens.models.yolo_checkpoint import (
    check_architecture,
    convert_ultralytics_checkpoint,
    load_yolo_checkpoint,
    save_yolo_checkpoint,
)

runner = CliRunner()
CAMVID = Path(os.environ.get("CLUSTERLENS_DATA", "/work/shared/data")) / "camvid"


class ShellPayload:
    """Unpickling this runs ``touch MARKER``: what a crafted checkpoint would hide."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def tiny():
    """The real yolov8n-seg network (random weights), with non-default loss gains."""
    torch.set_num_threads(1)
    bundle = load_yolo("yolov8n-seg.yaml")
    bundle.model.args = {"box": 5.0, "cls": 0.25, "dfl": 2.0}
    bundle.model.names = {index: f"thing {index}" for index in range(80)}
    return bundle.model


def outputs(model: torch.nn.Module, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoded detections and mask prototypes of a fixed random image."""
    pixels = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        decoded, _raw = model(pixels)  # eval mode: (decoded boxes, prototypes), raw head output
    return decoded


def ultralytics_native(model: torch.nn.Module, path: Path) -> Path:
    """What ultralytics writes: a pickle of the model object (fp16) and its train args."""
    native = copy.deepcopy(model).half()
    torch.save({"model": native, "train_args": {"box": 5.0, "task": "segment"}}, path)
    return path


def test_round_trip_gives_identical_outputs(tiny, tmp_path):
    path = save_yolo_checkpoint(tiny, tmp_path / "tiny.pt", half=False)
    loaded = load_model(f"yolo:{path}")
    assert (loaded.task, loaded.num_classes, loaded.random_weights) == ("segment", 80, False)
    assert (loaded.model.args.box, loaded.model.args.cls, loaded.model.args.dfl) == (5.0, 0.25, 2.0)
    assert loaded.hooked_layers == ["model.9", "model.15", "model.18", "model.21"]
    assert loaded.names[79] == "thing 79"
    for mine, theirs in zip(outputs(tiny), outputs(loaded.model), strict=True):
        assert torch.equal(mine, theirs)
    # loading builds throw-away random weights, but leaves the caller's random stream alone
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    load_yolo_checkpoint(path)
    assert torch.equal(torch.rand(3), expected)


def test_half_precision_file_is_half_the_size_and_loads_as_float32(tiny, tmp_path):
    full = save_yolo_checkpoint(tiny, tmp_path / "full.pt", half=False)
    half = save_yolo_checkpoint(tiny, tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.55 * full.stat().st_size
    model, task = load_yolo_checkpoint(half)
    assert task == "segment" and all(p.dtype == torch.float32 for p in model.parameters())
    rounded = torch.load(half, weights_only=True)["state_dict"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, rounded[name].to(tensor.dtype))


def test_file_holds_only_plain_data(tiny, tmp_path):
    path = save_yolo_checkpoint(tiny, tmp_path / "tiny.pt", metadata={"imgsz": 320})
    saved = torch.load(path, weights_only=True)  # would raise on any pickled object
    assert saved["format"] == "clusterlens-yolo" and saved["version"] == 1
    assert saved["names"][:2] == ["thing 0", "thing 1"] and saved["metadata"] == {"imgsz": 320}
    assert "yaml_file" not in saved["architecture"]
    with pytest.raises(FileExistsError, match="force"):
        save_yolo_checkpoint(tiny, path)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt"]  # no temporary left behind


def test_ultralytics_native_checkpoint_is_refused_with_the_way_out(tiny, tmp_path):
    path = ultralytics_native(tiny, tmp_path / "best.pt")
    with pytest.raises(ValueError) as info:
        load_model(f"yolo:{path}")
    message = str(info.value)
    assert "ultralytics-native checkpoint" in message and "could run code" in message
    assert "refers to ultralytics.nn.tasks.SegmentationModel" in message
    assert f"clusterlens convert-yolo {path} {tmp_path / 'best-safe.pt'} --trust-source" in message


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_crafted_pickle_never_runs(tmp_path, how):
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(ShellPayload(tmp_path / "armed")))  # the payload is live
    assert (tmp_path / "armed").exists()
    path = tmp_path / "evil.pt"
    if how == "torch.save":
        torch.save({"format": "clusterlens-yolo", "state_dict": ShellPayload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"model": ShellPayload(marker)}, protocol=2))
    with pytest.raises(ValueError, match="refused to load|not a readable"):
        load_model(f"yolo:{path}")
    refused = runner.invoke(app, ["convert-yolo", str(path), str(tmp_path / "out.pt")])
    assert refused.exit_code == 2 and "--trust-source" in refused.output
    # even a trusted conversion loads weights_only: a name that is no module class is refused
    trusted = ["convert-yolo", str(path), str(tmp_path / "out.pt"), "--trust-source"]
    converted = runner.invoke(app, trusted)
    assert converted.exit_code == 2 and (
        "not a torch.nn or ultralytics.nn module" in converted.output
        or "not an ultralytics YOLO checkpoint" in converted.output
    )
    assert not marker.exists() and not (tmp_path / "out.pt").exists()


def test_other_torch_files_and_damaged_architectures_are_refused(tiny, tmp_path):
    torch.save(tiny.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match="not a clusterlens YOLO checkpoint"):
        load_yolo(str(tmp_path / "weights.pt"))
    good = torch.load(save_yolo_checkpoint(tiny, tmp_path / "good.pt"), weights_only=True)
    del good["state_dict"]["model.0.conv.weight"]
    torch.save(good, tmp_path / "short.pt")
    with pytest.raises(ValueError, match="do not fit its architecture.*model.0.conv.weight"):
        load_yolo(str(tmp_path / "short.pt"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"activation": "__import__('os').system('touch x')"}, "activation"),
        ({"backbone": [[-1, 1, "torch_safe_load", ["evil.pt"]]]}, "torch_safe_load"),
        ({"backbone": [[-1, 1, "nn.functional", []]]}, "nn.functional"),
        ({"backbone": [[-1, 1, "Conv"]]}, "from, repeats, module, args"),
        ({"backbone": [], "head": []}, "no 'backbone'"),
    ],
)
def test_architectures_that_would_run_code_are_refused(tiny, change, match):
    check_architecture({**tiny.yaml, "activation": "nn.LeakyReLU(0.1)"})  # a real option
    with pytest.raises(ValueError, match=match):
        check_architecture({**tiny.yaml, **change})


def test_crafted_architecture_in_a_safe_file_never_runs(tiny, tmp_path):
    marker = tmp_path / "marker"
    saved = torch.load(save_yolo_checkpoint(tiny, tmp_path / "good.pt"), weights_only=True)
    saved["architecture"]["activation"] = f"__import__('os').system('touch {marker}')"
    torch.save(saved, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match="ultralytics would eval it"):
        load_model(f"yolo:{tmp_path / 'crafted.pt'}")
    assert not marker.exists()


def test_convert_refuses_without_trust_then_converts(tiny, tmp_path):
    source = ultralytics_native(tiny, tmp_path / "best.pt")
    target = tmp_path / "safe.pt"
    refused = runner.invoke(app, ["convert-yolo", str(source), str(target)])
    assert refused.exit_code == 2 and "rebuilds the network objects" in refused.output
    assert not target.exists()

    done = runner.invoke(app, ["convert-yolo", str(source), str(target), "--trust-source"])
    assert done.exit_code == 0, done.output
    assert f"load it as yolo:{target}" in done.output
    converted = load_model(f"yolo:{target}")
    assert converted.model.args.box == 5.0  # the train args' gain, not the default 7.5
    with torch.no_grad():
        reference = copy.deepcopy(tiny).half().float()  # the native file holds fp16 weights
        for mine, theirs in zip(outputs(reference), outputs(converted.model), strict=True):
            assert torch.allclose(mine, theirs, atol=1e-4)

    again = runner.invoke(app, ["convert-yolo", str(source), str(target), "--trust-source"])
    assert again.exit_code == 2 and "--force" in again.output
    forced = ["convert-yolo", str(source), str(target), "--trust-source", "--force", "--json"]
    assert runner.invoke(app, forced).exit_code == 0
    with pytest.raises(ValueError, match="already a clusterlens YOLO checkpoint"):
        convert_ultralytics_checkpoint(target, tmp_path / "x.pt", trust_source=True)


def _val_frame() -> np.ndarray:
    from PIL import Image

    frames = sorted((CAMVID / "val").glob("*.png"))
    if not frames:
        pytest.skip(f"no CamVid val frames under {CAMVID} (set CLUSTERLENS_DATA)")
    return np.asarray(Image.open(frames[0]).convert("RGB"))


@pytest.mark.skipif(not BUNDLED["camvid"].is_file(), reason="the packaged detector is absent")
def test_bundled_camvid_detector_finds_cars_on_a_val_frame():
    from clusterlens.catalog.yolo_extract import YoloExtractor

    image = _val_frame()
    bundle = load_model("yolo:camvid")
    assert "camvid" in list_yolo_specs() and not bundle.random_weights
    assert list(bundle.names.values()) == ["Car", "Pedestrian", "Bicyclist", "SignSymbol", "Pole"]
    extractor = YoloExtractor(bundle, imgsz=320, conf=0.25)
    decoded, proto, _ = extractor.forward(extractor.prepare([image])[0])
    boxes, masks = extractor.detections(decoded, proto)[0]
    classes = {bundle.names[int(index)] for index in boxes[:, 5]}
    assert "Car" in classes, classes
    assert masks is not None and masks.shape[0] == boxes.shape[0]
