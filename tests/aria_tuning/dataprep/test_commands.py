"""`vertex-tuning validate` and `vertex-tuning plan` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning.cli import main
from aria_tuning.dataprep import prepare_dataset

from tests.aria_tuning.dataprep.conftest import DATASETS, palm_line


def test_validate_exits_0_on_a_valid_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(DATASETS / "good" / "palm.jsonl"), "--model", "text-bison@002"]) == 0
    assert "valid for text-bison@002" in capsys.readouterr().out


def test_validate_exits_1_printing_file_line_reason(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATASETS / "bad" / "wrong_type.jsonl"
    assert main(["validate", str(path), "--model", "text-bison@002"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{path}:6: field input_text must be a string, got number"]


def test_validate_caps_the_listing_and_counts_the_rest(
    write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines("many.jsonl", [palm_line(i) for i in range(12)] + ["{"] * 75)
    assert main(["validate", str(path), "--model", "text-bison@002", "--max-problems", "20"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}:13: invalid JSON: JSON is malformed: truncated" or out[0].startswith(
        f"{path}:13: "
    )
    assert len(out) == 21
    assert out[-1] == "... and 55 more problems"


def test_validate_csv_with_named_columns() -> None:
    path = DATASETS / "bad" / "csv_wrong_column_count.csv"
    assert main(["validate", str(path), "--input-column", "pregunta", "--output-column", "respuesta"]) == 1


def test_validate_reports_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.jsonl")]) == 1
    assert "no dataset files found" in capsys.readouterr().err


def test_plan_prints_steps_batch_and_eta(
    write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines("p.jsonl", [palm_line(i) for i in range(1000)])
    code = main(["plan", str(path), "--model", "text-bison@002", "--accelerator", "GPU", "--epochs", "4"])
    captured = capsys.readouterr()
    assert code == 0
    assert "on GPU in us-central1" in captured.out
    n_eval = int(captured.out.split("eval examples: ")[1].split()[0])
    n_train = 1000 - n_eval
    assert f"train_steps = ceil(4 epochs x {n_train} / 8) = {-(-4 * n_train // 8)}" in captured.out
    assert "2025-04-09" in captured.err


def test_plan_refuses_over_the_limit(
    write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines("p.jsonl", [palm_line(i) for i in range(1000)])
    assert main(["plan", str(path), "--model", "text-bison@002", "--max-train-steps", "5"]) == 1
    assert "over the limit of 5" in capsys.readouterr().err


def test_plan_on_invalid_data_points_to_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(DATASETS / "bad" / "invalid_json.jsonl"), "--model", "text-bison@002"]) == 1
    assert "vertex-tuning validate" in capsys.readouterr().err


def test_plan_reports_the_eval_size_prepare_writes(
    write_lines: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines("g.jsonl", [palm_line(i) for i in range(12_000)])
    args = ["plan", str(path), "--model", "gemini-2.5-flash", "--eval-fraction", "0.5", "--json"]
    assert main(args) == 0
    planned = json.loads(capsys.readouterr().out)
    prepared = prepare_dataset([str(path)], "gemini-2.5-flash", str(tmp_path / "g"), eval_fraction=0.5)
    assert planned["eval_examples"] == prepared.counts["eval"] == 5000  # the catalog's Gemini cap
    assert planned["train_examples"] == prepared.counts["train"]

    assert main([*args, "--max-eval-examples", "300"]) == 0
    capped = json.loads(capsys.readouterr().out)
    prepared = prepare_dataset(
        [str(path)], "gemini-2.5-flash", str(tmp_path / "c"), eval_fraction=0.5, max_eval_examples=300
    )
    assert capped["eval_examples"] == prepared.counts["eval"] == 300
