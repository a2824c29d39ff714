"""``clusterlens ask`` end to end on a tiny random model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from clusterlens.cli import ask
from clusterlens.models.vlm import DecoderShape, prefill_flops
from clusterlens.models.vlm.tiny import sample_image

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """Test root, so that ``ask`` is a subcommand as in the real app."""

    ask.register(app)
    return app


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "square.png"
    Image.fromarray(sample_image(224, 336)).save(path)
    return path


@pytest.mark.slow
def test_ask_keeps_the_budget_and_accounts_for_it(app, image_file):
    result = runner.invoke(
        app,
        ["ask", str(image_file), "--query", "red square", "--vlm", "tiny:qwen2_vl"]
        + ["--budget", "20", "--max-new-tokens", "3", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    # 224 x 336 px -> 8 x 12 tokens of 28 px; the allocation grid is that grid
    assert report["token_grid"] == [8, 12]
    assert report["image_tokens_full"] == 96 and report["image_tokens_kept"] == 20
    assert report["tokens_full"] - report["tokens_kept"] == 96 - 20
    shape = DecoderShape(layers=2, hidden=32, ffn=64)
    assert report["flops_kept"] == prefill_flops(report["tokens_kept"], shape)
    assert report["flops_full"] == prefill_flops(report["tokens_full"], shape)
    # "red square" names no class of the offline model: no model pass, nothing spent
    assert report["select_flops"] == 0
    assert report["flops_ratio_with_selection"] == report["flops_ratio"]
    assert any("random weights" in note for note in report["notes"])


@pytest.mark.slow
def test_the_relevance_models_flops_are_counted_with_the_prefill(app, image_file):
    result = runner.invoke(
        app,
        ["ask", str(image_file), "--query", "cars", "--vlm", "tiny:qwen2_vl"]
        + ["--budget", "20", "--max-new-tokens", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    # offline:camvid's passes: on a tiny VLM they dwarf its prefill
    assert report["select_flops"] > report["flops_full"]
    assert report["flops_ratio_with_selection"] == pytest.approx(
        (report["flops_kept"] + report["select_flops"]) / report["flops_full"], abs=1e-4
    )
    plain = runner.invoke(
        app,
        ["ask", str(image_file), "--query", "cars", "--vlm", "tiny:qwen2_vl"]
        + ["--budget", "20", "--max-new-tokens", "2"],
    )
    assert "selection FLOPs (relevance model passes)" in plain.output


def test_a_model_that_is_not_on_disk_is_a_clear_error(app, image_file, tmp_path):
    missing = tmp_path / "no-such-model"
    missing.mkdir()
    result = runner.invoke(app, ["ask", str(image_file), "--query", "car", "--vlm", str(missing)])
    assert result.exit_code == 2
    assert "no config.json" in result.output


def test_a_missing_image_is_a_clear_error(app, tmp_path):
    result = runner.invoke(
        app, ["ask", str(tmp_path / "nope.png"), "--query", "car", "--vlm", "tiny:llava"]
    )
    assert result.exit_code == 2 and "image not found" in result.output


@pytest.mark.slow
def test_quadtree_leaves_are_pooled_into_one_token_each(app, image_file):
    base = ["ask", str(image_file), "--query", "red square", "--vlm", "tiny:llava"]
    base += ["--strategy", "quadtree", "--budget", "7", "--max-new-tokens", "2", "--json"]
    pooled = runner.invoke(app, base)
    covered = runner.invoke(app, [*base, "--coarse", "cover"])
    assert pooled.exit_code == 0 and covered.exit_code == 0, pooled.output + covered.output
    pooled_report = json.loads(pooled.stdout[pooled.stdout.index("{") :])
    covered_report = json.loads(covered.stdout[covered.stdout.index("{") :])
    assert pooled_report["image_tokens_kept"] == 7  # one token per leaf
    assert covered_report["image_tokens_kept"] == 36  # leaves tile the 6 x 6 grid


@pytest.mark.slow
def test_token_budget_adds_crops_and_counts_them_against_the_plain_image(app, image_file):
    args = ["ask", str(image_file), "--query", "red square", "--vlm", "tiny:qwen2_vl"]
    args += ["--strategy", "topk", "--budget", "24", "--max-new-tokens", "2", "--json"]
    result = runner.invoke(app, [*args, "--token-budget", "40", "--token-range", "4,12"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    # 3 patches of 12 tokens fit under 40: 3 base tokens + 3 crops of 3 x 4 tokens
    assert report["image_tokens_kept"] == 3 + 36
    assert report["image_tokens_full"] == 96  # the plain full image is the reference
    assert any("3 patches re-encoded from crops: 36" in note for note in report["notes"])


def test_token_budget_needs_a_qwen_model_and_a_valid_range(app, image_file):
    args = ["ask", str(image_file), "--query", "car", "--vlm", "tiny:llava"]
    result = runner.invoke(app, [*args, "--token-budget", "100"])
    assert result.exit_code == 2 and "needs a Qwen-family VLM" in result.output
    result = runner.invoke(app, [*args, "--token-budget", "100", "--token-range", "64"])
    assert result.exit_code == 2 and "--token-range must be two integers" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["fastv", "visionzip", "divprune", "cdpruner"])
def test_ask_answers_with_a_token_pruning_baseline(app, image_file, pruner):
    result = runner.invoke(
        app,
        ["ask", str(image_file), "--query", "red square", "--vlm", "tiny:qwen2_vl"]
        + ["--strategy", pruner, "--budget", "20", "--max-new-tokens", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["token_grid"] == [8, 12] and report["image_tokens_full"] == 96
    assert report["image_tokens_kept"] == 20
    assert report["flops_kept"] < report["flops_full"]
    assert {"vision", "select"} <= set(report["stages_s"])
    # only FastV's choice is counted (its probe layers, already inside flops_kept)
    if pruner == "fastv":
        assert report["select_flops"] == 0
        assert report["flops_ratio_with_selection"] == report["flops_ratio"]
    else:
        assert report["select_flops"] is None and report["flops_ratio_with_selection"] is None


def test_a_pruning_baseline_refuses_variable_budgets(app, image_file):
    result = runner.invoke(
        app,
        ["ask", str(image_file), "--query", "red square", "--vlm", "tiny:qwen2_vl"]
        + ["--strategy", "divprune", "--token-budget", "200"],
    )
    assert result.exit_code != 0
    assert "needs an allocation strategy" in result.output


@pytest.fixture
def clip_folder(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for index in range(5):  # an odd count: the last frame is left out
        frame = sample_image(112, 168)
        Image.fromarray(np.roll(frame, 4 * index, axis=1)).save(folder / f"{index:03d}.png")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_ask_about_a_video_keeps_the_budget_of_video_tokens(app, clip_folder, family):
    result = runner.invoke(
        app,
        ["ask", str(clip_folder), "--query", "red square", "--vlm", f"tiny:{family}"]
        + ["--budget", "30", "--max-new-tokens", "2", "--frames", "5", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    # 4 usable frames -> 2 temporal patches of one token grid (the video processor
    # scales small frames up to its minimum size first)
    rows, cols = report["token_grid"]
    assert report["image_tokens_full"] == 2 * rows * cols
    assert report["image_tokens_kept"] == 30
    assert report["tokens_full"] - report["tokens_kept"] == 2 * rows * cols - 30
    assert any("4 frames, 2 temporal patches" in note for note in report["notes"])
    assert report["select_flops"] == 0  # "red square" matches no class: no model pass


def test_ask_about_a_video_refuses_image_families_and_single_frames(app, clip_folder, tmp_path):
    result = runner.invoke(
        app, ["ask", str(clip_folder), "--query", "red square", "--vlm", "tiny:llava"]
    )
    assert result.exit_code != 0
    assert "needs a qwen2_vl, qwen2_5_vl or qwen3_vl model" in result.output
    single = tmp_path / "one"
    single.mkdir()
    Image.fromarray(sample_image(112, 168)).save(single / "000.png")
    result = runner.invoke(
        app, ["ask", str(single), "--query", "red square", "--vlm", "tiny:qwen2_vl"]
    )
    assert result.exit_code != 0 and "at least 2" in result.output


def test_ask_about_a_video_refuses_a_budget_beyond_its_tokens(app, clip_folder):
    result = runner.invoke(
        app,
        ["ask", str(clip_folder), "--query", "red square", "--vlm", "tiny:qwen2_vl"]
        + ["--budget", "100000"],
    )
    assert result.exit_code != 0 and "--budget must lie in [1, " in result.output
