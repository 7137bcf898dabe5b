"""The data-prep benchmark's floor and its account of what bounds prep, on a small generated file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.prep_bench import _floor, _floor_text, _memory_text, generate


def test_the_floor_times_each_job_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    generate(path, 2_000)
    floor = _floor(path)
    for key in (
        "floor_cpu_seconds",
        "digests_cpu_seconds",
        "content_hash_cpu_seconds",
        "ascii_count_cpu_seconds",
    ):
        assert floor[key] > 0, key


def test_the_lower_bound_is_the_floor_plus_the_jobs_prep_cannot_skip() -> None:
    floor = {
        "floor_cpu_seconds": 2.0,
        "digests_cpu_seconds": 1.0,
        "content_hash_cpu_seconds": 0.5,
        "ascii_count_cpu_seconds": 0.5,
    }
    text = _floor_text({"cpu_seconds": 10.0}, floor)
    assert "| floor + those three (a lower bound of prep) | 4.00 | 2.00 |" in text
    assert "| prep (`prepare_dataset`) | 10.00 | 5.00 |" in text
    assert "The remaining 6.00 s (60% of prep)" in text


@pytest.mark.parametrize(
    ("small_mb", "big_mb", "expected"), [(34.0, 50.0, "about 7 million"), (34.0, 70.0, "about 3 million")]
)
def test_the_memory_budget_is_read_off_the_slope(small_mb: float, big_mb: float, expected: str) -> None:
    text = _memory_text({"peak_rss_mb": small_mb}, {"peak_rss_mb": big_mb}, 100_000, 1_000_000)
    assert expected in text


def test_flat_memory_is_said_so() -> None:
    assert "did not grow" in _memory_text({"peak_rss_mb": 40.0}, {"peak_rss_mb": 40.0}, 100_000, 1_000_000)
