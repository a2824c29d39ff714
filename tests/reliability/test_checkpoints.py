"""Checkpoints from elsewhere: refused when they could run code, one line when unreadable.

A crafted ``checkpoint.pt`` once ran a shell command during ``flow evaluate --run``
(an unrestricted ``torch.load``). Every load now unpickles only tensors and plain
containers; these cases prove the payload never runs (its marker file stays absent) and
that truncated or foreign files give a one-line error and exit code 2, not a traceback.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.reliability.conftest import digest, run_capped

from clusterlens.flow.train import TrainConfig, read_checkpoint, train
from clusterlens.models.offline import train as offline_train

TINY_FLOW = TrainConfig(steps=2, n_train=200, n_test=100, batch_size=32, width=16, depth=1)


class ShellPayload:
    """Unpickling this runs ``touch MARKER``: what an attacker would put in a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_file(path: Path, marker: Path, **plain) -> Path:
    """A checkpoint with the usual keys, one of which hides the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**plain, "model": {"weight": ShellPayload(marker)}}, path)
    return path


@pytest.fixture
def flow_run(tmp_path) -> Path:
    """A real, tiny flow run folder (two steps)."""
    train(TINY_FLOW, tmp_path / "run", progress=False)
    return tmp_path / "run"


def test_the_payload_really_runs_when_unpickled_unsafely(tmp_path):
    # Guards the tests below: if the payload were inert, "marker absent" would prove nothing.
    # (plain pickle, which is what torch.save writes the object with: no unsafe torch.load
    # appears anywhere in the project, not even here)
    pickle.loads(pickle.dumps(ShellPayload(tmp_path / "marker")))
    assert (tmp_path / "marker").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["flow", "evaluate", "--nfe", "1", "--n-samples", "50", "--run"],
        ["flow", "sample", "--n", "5", "--out", "{tmp}/s.npy", "--run"],
        ["flow", "train", "--steps", "2", "--out"],  # resuming loads the checkpoint
    ],
    ids=["evaluate", "sample", "train-resume"],
)
def test_flow_commands_refuse_a_malicious_checkpoint(tmp_path, command):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    malicious_file(run / "checkpoint.pt", marker, step=1, config={}, sample_shape=[2])
    before = digest(run)
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    done = run_capped(*args, run)
    assert done.returncode == 2, done.stderr
    assert not marker.exists(), "the checkpoint's payload ran"
    assert "refused to load" in done.message and "posix.system" in done.message
    assert "Traceback" not in done.stderr
    assert digest(run) == before


def test_library_refusal_names_the_blocked_object(tmp_path):
    path = malicious_file(tmp_path / "checkpoint.pt", tmp_path / "marker")
    with pytest.raises(ValueError, match=r"refused to load .*posix\.system.*could run code"):
        read_checkpoint(path)
    assert not (tmp_path / "marker").exists()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _foreign(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)  # a torch file, but not a flow run's


def _text(path: Path) -> None:
    path.write_text("not a checkpoint\n")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (_truncate, "not a readable torch checkpoint"),
        (_foreign, "is not a clusterlens flow checkpoint: it lacks model"),
        (_text, "not a readable torch checkpoint"),
        (_empty, "not a readable torch checkpoint"),
    ],
    ids=["truncated", "foreign", "text", "empty"],
)
def test_spoilt_checkpoints_are_one_line_errors(flow_run, spoil, message):
    spoil(flow_run / "checkpoint.pt")
    with pytest.raises(ValueError, match=message):
        read_checkpoint(flow_run / "checkpoint.pt")


@pytest.mark.slow
def test_truncated_checkpoint_through_the_command_is_one_line(flow_run):
    _truncate(flow_run / "checkpoint.pt")
    done = run_capped("flow", "evaluate", "--run", flow_run, "--nfe", "1")
    assert done.returncode == 2, done.stderr
    assert "not a readable torch checkpoint" in done.message
    assert "Traceback" not in done.stderr
    assert len(done.message.splitlines()) == 1


def test_a_real_run_still_resumes_and_loads(flow_run):
    state = read_checkpoint(flow_run / "checkpoint.pt")
    assert state["step"] == 2 and state["config"]["steps"] == 2
    resumed = train(TrainConfig(**{**state["config"], "steps": 3}), flow_run, progress=False)
    assert resumed["steps"] == 3


def _tiny_camvid(root: Path) -> Path:
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(2):
            image = np.full((16, 16, 3), 40 * index, np.uint8)
            Image.fromarray(image).save(root / split / f"{index}.png")
            Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / f"{split}annot/{index}.png")
    return root


def test_offline_training_refuses_a_malicious_last_checkpoint(tmp_path):
    marker, out = tmp_path / "marker", tmp_path / "out"
    config = offline_train.TrainConfig(epochs=1, batch_size=2, widths=(4, 8))
    malicious_file(out / "last.pt", marker, config=config.to_json())
    with pytest.raises(ValueError, match="refused to load .*last.pt"):
        offline_train.train(config, str(_tiny_camvid(tmp_path / "camvid")), out)
    assert not marker.exists()


def test_offline_export_refuses_a_malicious_best_checkpoint(tmp_path):
    marker = tmp_path / "marker"
    path = malicious_file(tmp_path / "best.pt", marker, epoch=1)
    with pytest.raises(ValueError, match="refused to load"):
        offline_train._load_state(path, ("model", "epoch"))
    assert not marker.exists()


@pytest.mark.parametrize("spoil", [_truncate, _text, _empty], ids=["truncated", "text", "empty"])
def test_offline_training_explains_an_unreadable_checkpoint(tmp_path, spoil):
    path = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.zeros(64)}, "epoch": 1}, path)
    spoil(path)
    with pytest.raises(ValueError, match="not a readable torch checkpoint .*use another --out"):
        offline_train._load_state(path, ("model", "epoch"))
