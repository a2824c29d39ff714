"""Training the CamVid detector: architecture size, resume after an interruption, refusals."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.catalog.detector import (
    STATE,
    DetectorRun,
    count_parameters,
    export_safe,
    model_config,
    train_detector,
    training_seconds,
    validate_detector,
)
from clusterlens.evaluate.camvid import CLASS_NAMES


def tiny_camvid(root: Path, train: int = 4, val: int = 2, size: int = 64) -> Path:
    """A CamVid-shaped folder whose images show the labelled cars and poles."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("val", val)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(count):
            label = np.full((size, size), CLASS_NAMES.index("Road"), np.uint8)
            image = np.full((size, size, 3), 90, np.uint8)
            x, y = (int(v) for v in rng.integers(4, size // 2, 2))
            label[y : y + 20, x : x + 24] = CLASS_NAMES.index("Car")
            image[y : y + 20, x : x + 24] = (200, 30, 30)
            label[4:60, 58:61] = CLASS_NAMES.index("Pole")
            image[4:60, 58:61] = (240, 240, 240)
            Image.fromarray(image).save(root / split / f"f{index:03d}.png")
            Image.fromarray(label).save(root / f"{split}annot" / f"f{index:03d}.png")
    return root


def test_architecture_is_narrow_enough_to_ship():
    config = model_config(5)
    assert (config["depth_multiple"], config["width_multiple"]) == (0.33, 0.1875)
    # 2 bytes a parameter in the half-precision checkpoint: about 4 MB, under 5 MB
    assert count_parameters(config) == 1_980_271
    with pytest.raises(ValueError, match="width"):
        model_config(5, width=0)


class Interrupted(Exception):
    """Stands for a kill after an epoch was saved."""


@pytest.mark.slow
def test_interrupted_run_resumes_and_finishes(tmp_path):
    torch.set_num_threads(1)
    camvid = tiny_camvid(tmp_path / "camvid")
    out, dataset = tmp_path / "run", tmp_path / "derived"

    def stop_after_first_save(trainer):
        raise Interrupted

    amp = []
    callbacks = {
        "on_model_save": stop_after_first_save,
        "on_train_start": lambda t: amp.append(t.amp),
    }
    with pytest.raises(Interrupted):
        train_detector(out, dataset, data=camvid, epochs=2, imgsz=64, batch=2, callbacks=callbacks)
    assert [bool(value) for value in amp] == [False]  # no mixed precision on CPU
    state = json.loads((out / STATE).read_text())
    assert (state["epochs_done"], state["finished"]) == (1, False)
    assert state["settings"]["imgsz"] == 64 and state["parameters"] == 1_980_271

    epochs_seen = []
    run = train_detector(
        out, dataset, callbacks={"on_train_epoch_start": lambda t: epochs_seen.append(t.epoch)}
    )
    assert run.resumed and run.finished and run.epochs_done == 2
    assert epochs_seen == [1]  # continued at the second epoch, did not start over
    with (out / "results.csv").open() as handle:
        assert [int(float(row["epoch"])) for row in csv.DictReader(handle)] == [1, 2]
    assert "metrics/mAP50(M)" in run.metrics and "per_class/Car/mAP50(B)" in run.metrics
    assert run.best.stat().st_size < 5 * 1024 * 1024
    _check_safe_export(run, dataset)

    # a finished run is reported, not retrained; changing its settings is refused
    again = train_detector(out, dataset, callbacks={"on_train_epoch_start": epochs_seen.append})
    assert again.finished and epochs_seen == [1]
    with pytest.raises(ValueError, match="epochs 2 -> 3"):
        train_detector(out, dataset, epochs=3)


def _check_safe_export(run: DetectorRun, dataset: Path) -> None:
    """The finished run's best.pt, exported tensors-only, scores as training measured it."""
    from clusterlens.models.yolo import load_yolo

    assert run.safe_checkpoint.is_file() and run.best_sha256 is not None
    assert run.safe_checkpoint.stat().st_size < run.best.stat().st_size  # no optimizer, no pickle
    bundle = load_yolo(str(run.safe_checkpoint))
    assert bundle.task == "segment" and bundle.names[0] == "Car"
    about = json.loads(run.safe_checkpoint.with_suffix(".json").read_text())
    assert about["epochs"] == 2 and about["parameters"] == 1_980_271
    assert about["train_time_s"] > 0 and about["val_final"] == run.metrics
    # a kill between the two writes: the next call writes the JSON, keeps the checkpoint
    written = run.safe_checkpoint.stat().st_mtime_ns
    run.safe_checkpoint.with_suffix(".json").unlink()
    assert export_safe(run) == run.safe_checkpoint
    assert json.loads(run.safe_checkpoint.with_suffix(".json").read_text()) == about
    assert run.safe_checkpoint.stat().st_mtime_ns == written
    measured = validate_detector(run.safe_checkpoint, dataset / "data.yaml", imgsz=64)
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(M)", "per_class/Car/mAP50(M)"):
        assert measured[key] == pytest.approx(run.metrics[key], abs=1e-6), key


def test_training_seconds_add_up_resumed_sessions(tmp_path):
    rows = ["epoch,time,x", "1,10.0,0", "2,20.5,0", "3,6.0,0", "4,12.0,0"]
    (tmp_path / "results.csv").write_text("\n".join(rows) + "\n")
    assert training_seconds(tmp_path / "results.csv") == 32.5  # 20.5, then 12 after resume
    assert training_seconds(tmp_path / "missing.csv") is None


def test_export_refuses_unfinished_runs_and_a_swapped_best(tmp_path):
    out, dataset = tmp_path / "run", tmp_path / "derived"
    _fake_interrupted_run(out, dataset)
    run = DetectorRun(out=out, **json.loads((out / STATE).read_text()))
    with pytest.raises(ValueError, match="has not finished"):
        export_safe(run)
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(tmp_path / "armed")))  # the payload is live
    assert (tmp_path / "armed").exists()
    # a crafted best.pt in place of the one training left: never unpickled
    torch.save({"model": _Payload(marker)}, run.best)
    run.finished, run.best_sha256 = True, "0" * 64
    with pytest.raises(ValueError, match="will not be unpickled"):
        export_safe(run)
    assert not marker.exists() and not run.safe_checkpoint.exists()
    # a finished run that recorded no hash: refused too, with the explicit converter command
    run.best_sha256 = None
    with pytest.raises(ValueError, match="convert-yolo .* --trust-source"):
        export_safe(run)
    assert not marker.exists() and not run.safe_checkpoint.exists()


class _Payload:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _fake_interrupted_run(out: Path, dataset: Path) -> None:
    (out / "weights").mkdir(parents=True)
    (out / "weights" / "last.pt").write_bytes(b"not the checkpoint this run saved")
    (dataset).mkdir()
    (dataset / "data.yaml").write_text("path: x\n")
    settings = {"epochs": 5, "imgsz": 64, "batch": 2, "width": 0.1875, "seed": 0, "min_area": 40}
    settings["data_yaml"] = str(dataset.absolute() / "data.yaml")
    run = DetectorRun(out, settings, 1, epochs_done=1, last_sha256="0" * 64)
    run.save()


def test_resume_refuses_a_swapped_checkpoint_and_changed_settings(tmp_path):
    out, dataset = tmp_path / "run", tmp_path / "derived"
    _fake_interrupted_run(out, dataset)
    with pytest.raises(ValueError, match="will not be unpickled"):
        train_detector(out, dataset)
    with pytest.raises(ValueError, match="imgsz 64 -> 128"):
        train_detector(out, dataset, imgsz=128)
    with pytest.raises(ValueError, match="data_yaml"):
        train_detector(out, tmp_path / "other")
    state = json.loads((out / STATE).read_text())
    (out / STATE).write_text(json.dumps({**state, "epochs_done": 5}))
    with pytest.raises(ValueError, match="stopped during its final validation"):
        train_detector(out, dataset)
    (out / STATE).write_text("{")
    with pytest.raises(ValueError, match="damaged"):
        train_detector(out, dataset)


def test_bad_settings_and_missing_data(tmp_path):
    camvid = tiny_camvid(tmp_path / "camvid", train=1, val=1)
    with pytest.raises(ValueError, match="multiple of 32"):
        train_detector(tmp_path / "run", tmp_path / "derived", data=camvid, imgsz=100)
    with pytest.raises(FileNotFoundError, match="no CamVid data"):
        train_detector(tmp_path / "run2", tmp_path / "derived2", data=tmp_path / "nothing")


_KILLED_RUN = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from clusterlens.catalog.detector import train_detector

def hold_after_first_save(trainer):
    Path(sys.argv[3]).write_text("saved")
    time.sleep(600)  # the test kills the process here

train_detector(sys.argv[1], sys.argv[2], epochs=2, imgsz=64, batch=2,
               callbacks={"on_model_save": hold_after_first_save})
"""


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes(tmp_path):
    import subprocess
    import sys
    import time

    torch.set_num_threads(1)
    tiny_camvid(tmp_path / "camvid", train=2, val=1)
    out, dataset, marker = tmp_path / "run", tmp_path / "derived", tmp_path / "saved"
    from clusterlens.catalog.camvid_instances import derive_camvid_instances

    derive_camvid_instances(dataset, data=tmp_path / "camvid")
    args = [sys.executable, "-c", _KILLED_RUN, str(out), str(dataset), str(marker)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the first epoch never saved"
            time.sleep(0.2)
    finally:
        process.kill()  # SIGKILL: no cleanup, no final_eval
        process.wait()
    assert json.loads((out / STATE).read_text())["epochs_done"] == 1

    epochs_seen = []
    run = train_detector(
        out, callbacks={"on_train_epoch_start": lambda t: epochs_seen.append(t.epoch)}
    )
    assert (run.resumed, run.finished, run.epochs_done, epochs_seen) == (True, True, 2, [1])
