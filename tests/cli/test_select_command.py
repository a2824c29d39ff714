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


def test_min_match_and_the_query_parse_reach_the_json(tmp_path):
    rgb = (np.random.default_rng(1).random((40, 50, 3)) * 255).astype(np.uint8)
    image = tmp_path / "street.png"
    Image.fromarray(rgb).save(image)
    arguments = ["select", str(image), "-q", "tarmac and a blue sky", "-s", "topk", "-b", "4"]
    result = runner.invoke(app, [*arguments, "--min-match", "0.99", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "street_topk.json").read_text())["meta"]
    assert meta["query_parse"]["objects"] == ["tarmac", "blue sky"]
    phrases = meta["query_match"]["phrases"]
    assert [p["best"][0] for p in phrases] == ["Road", "Sky"]
    assert not meta["query_match"]["matched"] and all(p["threshold"] == 0.99 for p in phrases)
    assert meta["balancer_weights"]["coupling"] == 0.0
    bad = runner.invoke(app, [*arguments, "--min-match", "3", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "threshold must lie in (-1, 1]" in bad.output
