"""A partial benchmark run merged into RESULTS.md: its rows and sections replace or join the old ones."""

from __future__ import annotations

import pytest

from bench.common import Row, Section, render_results
from bench.results_merge import merge

MACHINE = {"CPU": "test"}


def _results(*sections: Section) -> str:
    return render_results(list(sections), MACHINE, "Total benchmark time: 9 s.")


def _section(title: str, *rows: tuple[str, float], text: str = "how") -> Section:
    return Section(title, [Row(name, ours, 2.0, "ms", "target", True) for name, ours in rows], text)


FULL = _results(
    _section("1. Parse", ("1. Parse time", 1.0), text="parse text"),
    _section("2. Waits", ("2. CPU per poll", 1.5), ("2. Memory", 1.5), text="waits text"),
    _section("3. Slots", ("3. Slot-seconds", 1.0), text="slots text"),
    Section("Data prep (make bench-prep)", [Row("Data prep MB/s", 5.0, 1.0, "MB/s", "t", True)], "prep text"),
)


def _row_names(text: str) -> list[str]:
    return [line.split(" | ")[0].removeprefix("| ") for line in text.splitlines() if line.startswith("| ")][
        1:
    ]


def _titles(text: str) -> list[str]:
    return [line.removeprefix("## ") for line in text.splitlines() if line.startswith("## ")]


def test_a_new_section_joins_after_its_nearest_number() -> None:
    partial = _results(_section("2b. Waits over gRPC", ("2b. CPU per poll, gRPC", 0.5), text="grpc text"))

    merged = merge(FULL, partial, "2026-12-01", "1.0, 1.0, 1.0")

    assert _row_names(merged) == [
        "1. Parse time",
        "2. CPU per poll",
        "2. Memory",
        "2b. CPU per poll, gRPC",
        "3. Slot-seconds",
        "Data prep MB/s",
    ]
    assert _titles(merged) == [
        "Machine",
        "1. Parse",
        "2. Waits",
        "2b. Waits over gRPC",
        "3. Slots",
        "Data prep (make bench-prep)",
    ]
    assert "grpc text" in merged and "waits text" in merged and "prep text" in merged
    assert "Merged on 2026-12-01: 2b measured then" in merged
    assert "Total benchmark time: 9 s." in merged


def test_a_section_run_again_replaces_its_rows_text_and_note() -> None:
    first = merge(FULL, _results(_section("2. Waits", ("2. CPU per poll", 9.0), text="new waits")), "d1", "0")

    again = merge(
        first, _results(_section("2. Waits", ("2. CPU per poll", 7.0), text="newer waits")), "d2", "0"
    )

    assert _row_names(again) == ["1. Parse time", "2. CPU per poll", "3. Slot-seconds", "Data prep MB/s"]
    assert "| 2. CPU per poll | 7 ms |" in again
    assert "newer waits" in again and "new waits\n" not in again and "waits text" not in again
    assert "Merged on d2: 2 measured then" in again and "Merged on d1" not in again
    assert _titles(again).count("2. Waits") == 1


def test_a_document_without_the_summary_table_is_refused() -> None:
    with pytest.raises(ValueError, match="no summary table"):
        merge("# Benchmark results\n\n## Machine\n", _results(_section("2. Waits")), "d", "0")
