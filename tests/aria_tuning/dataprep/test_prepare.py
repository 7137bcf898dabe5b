"""prepare_dataset end to end on local files: outputs, report, policies, nothing written on failure."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning.dataprep import DatasetError, PlanError, prepare_dataset

from tests.aria_tuning.dataprep.conftest import DATASETS, gemini_line, palm_line


def test_palm_dataset_is_written_with_report(write_lines: Callable[..., Path], tmp_path: Path) -> None:
    lines = [palm_line(i) for i in range(100)] + [palm_line(3), palm_line(4)]  # two duplicates
    out = tmp_path / "prepared" / "v1"
    result = prepare_dataset([str(write_lines("in.jsonl", lines))], "text-bison@002", str(out), epochs=3)
    counts = result.counts
    assert counts["read"] == 102 and counts["valid"] == 102 and counts["invalid"] == 0
    assert counts["duplicates"] == 2 and counts["train"] + counts["eval"] == 100
    train = (out / "train.jsonl").read_bytes()
    evals = (out / "eval.jsonl").read_bytes()
    assert len(train.splitlines()) == counts["train"] and len(evals.splitlines()) == counts["eval"]
    assert result.content_sha256 == hashlib.sha256(train + evals).hexdigest()
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == counts
    assert report["content_sha256"] == result.content_sha256
    assert report["plan"]["train_steps"] == result.plan.train_steps == -(-3 * counts["train"] // 24)
    assert set(report["tokens"]["input"]) == {"p50", "p95", "max"}
    assert report["files"]["train.jsonl"]["sha256"] == hashlib.sha256(train).hexdigest()


def test_to_xcom_is_small_json(write_lines: Callable[..., Path], tmp_path: Path) -> None:
    result = prepare_dataset(
        [str(write_lines("in.jsonl", [palm_line(i) for i in range(5000)]))],
        "text-bison@002",
        str(tmp_path / "o"),
    )
    payload = json.dumps(result.to_xcom())
    assert len(payload) < 2000
    assert json.loads(payload)["train_uri"] == str(tmp_path / "o" / "train.jsonl")


def test_gemini_output_from_palm_chat_and_csv_sources(tmp_path: Path) -> None:
    good = DATASETS / "good"
    sources = [str(good / "palm.jsonl"), str(good / "chat.jsonl"), str(good / "quoted_newlines.csv")]
    result = prepare_dataset(
        sources,
        "gemini-2.5-flash",
        str(tmp_path / "g"),
        eval_fraction=0.0,
        input_column="pregunta",
        output_column="respuesta",
    )
    records = [json.loads(line) for line in Path(result.train_uri).read_text().splitlines()]
    assert len(records) == 36
    assert all([turn["role"] for turn in r["contents"]] == ["user", "model"] for r in records)
    with_system = [r for r in records if "systemInstruction" in r]
    assert len(with_system) == 12
    assert with_system[0]["systemInstruction"]["parts"][0]["text"] == "Sé breve."
    assert result.plan.method == "tuning_job"


def test_palm_output_prepends_the_system_text(write_lines: Callable[..., Path], tmp_path: Path) -> None:
    lines = [gemini_line(i, system="Sé amable.") for i in range(12)]
    result = prepare_dataset(
        [str(write_lines("g.jsonl", lines))], "text-bison@002", str(tmp_path / "p"), eval_fraction=0
    )
    first = json.loads(Path(result.train_uri).read_text().splitlines()[0])
    assert first == {"input_text": "Sé amable.\n\nPregunta 0", "output_text": "Respuesta 0"}


def test_invalid_data_fails_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "never"
    bad = DATASETS / "bad" / "invalid_json.jsonl"
    with pytest.raises(DatasetError) as caught:
        prepare_dataset([str(bad)], "text-bison@002", str(out))
    assert caught.value.problems[0].startswith(f"{bad}:3: invalid JSON")
    assert not out.exists()


def test_skip_policy_within_the_fraction_lists_each_skipped(tmp_path: Path) -> None:
    bad = DATASETS / "bad" / "missing_field.jsonl"
    result = prepare_dataset(
        [str(bad)], "text-bison@002", str(tmp_path / "s"), invalid_policy="skip", max_invalid_fraction=0.1
    )
    assert result.counts["invalid"] == 1 and result.counts["train"] + result.counts["eval"] == 12
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    assert report["skipped"] == [f"{bad}:2: missing field output_text"]


def test_skip_policy_over_the_fraction_fails(tmp_path: Path) -> None:
    bad = DATASETS / "bad" / "missing_field.jsonl"
    with pytest.raises(DatasetError, match=r"1 of 13 examples are invalid \(7.69%\), over the allowed 5.00%"):
        prepare_dataset(
            [str(bad)],
            "text-bison@002",
            str(tmp_path / "s"),
            invalid_policy="skip",
            max_invalid_fraction=0.05,
        )
    assert not (tmp_path / "s").exists()


def test_plan_over_the_limit_fails_before_anything_is_written(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_lines("in.jsonl", [palm_line(i) for i in range(300)])
    with pytest.raises(PlanError, match="over the limit of 10"):
        prepare_dataset([str(path)], "text-bison@002", str(tmp_path / "p"), epochs=5, max_train_steps=10)
    assert not (tmp_path / "p").exists()


def test_directory_source_reads_every_file(tmp_path: Path, write_lines: Callable[..., Path]) -> None:
    write_lines("dir/a.jsonl", [palm_line(i) for i in range(6)])
    write_lines("dir/sub/b.jsonl", [palm_line(i) for i in range(6, 12)])
    result = prepare_dataset([str(tmp_path / "dir")], "text-bison@002", str(tmp_path / "o"))
    assert result.counts["read"] == 12


def test_missing_source_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset files found"):
        prepare_dataset([str(tmp_path / "nope.jsonl")], "text-bison@002", str(tmp_path / "o"))


def test_retired_model_logs_date_and_replacement(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level(logging.WARNING, logger="aria_tuning.dataprep.prepare"):
        prepare_dataset([str(DATASETS / "good" / "palm.jsonl")], "text-bison@001", str(tmp_path / "r"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2025-04-09" in w and "gemini-3.5-flash" in w for w in warnings)  # the new default


def test_a_local_write_that_fails_leaves_no_file(tmp_path: Path) -> None:
    from aria_tuning.dataprep import file_io

    target = tmp_path / "out" / "eval.jsonl"
    with pytest.raises(RuntimeError), file_io.open_write(str(target)) as out:
        out.write(b"partial")
        raise RuntimeError("disk full")
    assert list((tmp_path / "out").iterdir()) == []


def test_local_runs_build_no_storage_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Without ADC, building the default client raises: a local-only run must never build one.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    result = prepare_dataset([str(DATASETS / "good" / "palm.jsonl")], "text-bison@002", str(tmp_path / "o"))
    assert Path(result.train_uri).is_file()
