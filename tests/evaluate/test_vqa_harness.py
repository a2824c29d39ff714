"""The harness's pieces without a model: the record store, the summary, the options."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import pytest

from clusterlens.vlm_eval import (
    EvalConfig,
    RecordStore,
    parse_budgets,
    parse_strategies,
    plot_accuracy_vs_tokens,
    summarize,
)


def record(strategy: str, budget: int | None, item: str, score: float, prefill: float, select=0.0):
    return {
        "strategy": strategy,
        "budget": budget,
        "item": item,
        "answer": "x",
        "metric": "vqa",
        "score": score,
        "image_tokens_kept": budget or 24,
        "image_tokens_full": 24,
        "tokens_kept": (budget or 24) + 10,
        "tokens_full": 34,
        "flops_kept": budget or 24,
        "flops_full": 24,
        "vision_s": 0.5,
        "select_s": select,
        "prefill_s": prefill,
        "generate_s": prefill * 2,
        "peak_memory_mib": None,
    }


def test_selection_flops_are_added_to_the_kept_prefill_when_every_record_counts_them(tmp_path):
    records = [
        {**record("mip-cascade", 8, "q1", 1.0, 0.1), "select_flops": 4},
        {**record("mip-cascade", 8, "q2", 1.0, 0.1), "select_flops": 8},
    ]
    config = EvalConfig("tiny:qwen2_vl", Path("set.jsonl"), ["mip-cascade"], [8], tmp_path)
    (row,) = summarize(records, config)["summary"]
    assert row["flops_ratio"] == pytest.approx(8 / 24)
    assert row["flops_ratio_with_selection"] == pytest.approx(((8 + 4) / 24 + (8 + 8) / 24) / 2)
    assert row["select_gflops"] == pytest.approx(6e-9)
    mixed = [records[0], record("mip-cascade", 8, "q3", 1.0, 0.1)]  # one without a count
    (row,) = summarize(mixed, config)["summary"]
    assert row["select_gflops"] is None and row["flops_ratio_with_selection"] is None


def test_store_appends_reloads_and_drops_a_torn_last_line(tmp_path):
    path = tmp_path / "records.jsonl"
    store = RecordStore(path)
    store.append(record("all", None, "q1", 1.0, 0.2))
    store.append(record("fastv", 8, "q1", 0.0, 0.1))
    with path.open("a") as handle:
        handle.write('{"strategy": "fastv", "budget": 16, "ite')  # a kill mid-write
    reopened = RecordStore(path)
    assert ("all", None, "q1") in reopened and ("fastv", 8, "q1") in reopened
    assert len(reopened.records) == 2
    assert path.read_text().endswith("}\n")  # the torn line is gone, appends stay whole
    reopened.append(record("fastv", 16, "q1", 1.0, 0.1))
    assert [json.loads(line)["budget"] for line in path.read_text().splitlines()] == [None, 8, 16]


def test_summary_means_and_the_selection_overhead_against_all_tokens(tmp_path):
    records = [
        record("all", None, "q1", 1.0, 0.30),
        record("all", None, "q2", 0.0, 0.50),
        record("divprune", 8, "q1", 1.0, 0.10, select=0.02),
        record("divprune", 8, "q2", 1.0, 0.30, select=0.06),
    ]
    config = EvalConfig("tiny:qwen2_vl", Path("set.jsonl"), ["all", "divprune"], [8], tmp_path)
    summary = {row["strategy"]: row for row in summarize(records, config)["summary"]}
    assert summary["all"]["accuracy"] == 0.5 and summary["divprune"]["accuracy"] == 1.0
    assert summary["divprune"]["flops_ratio"] == pytest.approx(8 / 24)
    # records without a selection count (older runs, methods that do not count) stay None
    assert summary["divprune"]["flops_ratio_with_selection"] is None
    # selection 0.04 s on average against 0.4 - 0.2 = 0.2 s of prefill saved
    assert summary["divprune"]["selection_overhead"] == pytest.approx(0.2)
    assert summary["all"]["selection_overhead"] is None
    path = plot_accuracy_vs_tokens(list(summary.values()), tmp_path / "plot.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_option_parsing_names_what_is_accepted():
    assert parse_strategies("cdpruner,mip-cascade") == ["cdpruner", "mip-cascade"]
    assert parse_budgets("8") == [8]
    with pytest.raises(ValueError, match="choose from all, cdpruner, divprune, fastv"):
        parse_strategies("nope")
    with pytest.raises(ValueError, match="positive"):
        parse_budgets("")


@pytest.mark.parametrize(
    "name", ["clusterlens.vlm_eval", "clusterlens.evaluate.vqa", "clusterlens.evaluate.vqa.metrics"]
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
