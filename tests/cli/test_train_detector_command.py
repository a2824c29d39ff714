"""clusterlens train-detector via CliRunner: train, report a finished run, refuse bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tests.catalog.test_detector import tiny_camvid
from typer.testing import CliRunner

from clusterlens.cli.main import app

runner = CliRunner()


@pytest.mark.slow
def test_train_then_report_then_refuse(tmp_path):
    torch.set_num_threads(1)
    camvid = tiny_camvid(tmp_path / "camvid", train=2, val=1)
    paths = ["--out", str(tmp_path / "run"), "--dataset", str(tmp_path / "derived")]
    settings = ["--data", str(camvid), "--epochs", "1", "--imgsz", "64", "--batch", "2"]
    trained = runner.invoke(app, ["train-detector", *paths, *settings])
    assert trained.exit_code == 0, trained.output
    assert "epoch 1/1" in trained.output and "best.pt" in trained.output
    assert "detector finished: 1 epochs, 1,980,271 parameters" in trained.output

    # --dataset may be dropped too: the run keeps its own
    reported = runner.invoke(app, ["train-detector", "--out", str(tmp_path / "run"), "--json"])
    assert reported.exit_code == 0, reported.output
    state = json.loads(reported.stdout)
    assert (state["finished"], state["epochs_done"], state["settings"]["imgsz"]) == (True, 1, 64)
    assert "epoch 1/1" not in reported.output  # nothing retrained

    refused = runner.invoke(app, ["train-detector", *paths, "--epochs", "2"])
    assert refused.exit_code == 2 and "epochs 1 -> 2" in refused.output


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    paths = ["--out", str(tmp_path / "run"), "--dataset", str(tmp_path / "derived")]
    missing = runner.invoke(app, ["train-detector", *paths, "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no CamVid data at" in missing.output
    if not torch.cuda.is_available():
        cuda = runner.invoke(app, ["train-detector", *paths, "--device", "cuda"])
        assert cuda.exit_code == 2 and "no CUDA device" in cuda.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "derived").exists()
