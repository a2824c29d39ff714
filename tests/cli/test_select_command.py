"""clusterlens select with several queries: one context, one picture and JSON each."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from clusterlens.cli.main import app

runner = CliRunner()


def test_several_queries_share_the_image_work(tmp_path):
    rgb = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    image = tmp_path / "street.png"
    Image.fromarray(rgb).save(image)
    arguments = ["select", str(image), "-q", "the road", "-q", "cars", "-s", "topk", "-b", "8"]
    result = runner.invoke(app, [*arguments, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first, second = (
        json.loads((tmp_path / f"street_topk_q{i}.json").read_text())["accounting"] for i in (1, 2)
    )
    assert (tmp_path / "street_topk_q2.png").exists()
    assert first["encoder_gflops"] > 0 and first["encoder_calls"] == 1
    assert second["encoder_gflops"] == 0 and "model passes" in second["cached"]
    assert "reused decoded image, model passes" in result.output.replace("\n", " ")
