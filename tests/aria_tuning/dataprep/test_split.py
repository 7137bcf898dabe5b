"""Deterministic split: same examples, same split, whatever the order; caps pick the smallest digests."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning.dataprep import prepare_dataset
from aria_tuning.dataprep.digests import DigestSet, digest_of
from aria_tuning.dataprep.split_rule import eval_cut, eval_size, eval_threshold
from aria_tuning.errors import PlanError

from tests.aria_tuning.dataprep.conftest import palm_line


def test_eval_threshold_selects_exactly_the_n_smallest() -> None:
    rng = random.Random(3)
    digests = [rng.getrandbits(64) | 1 for _ in range(5000)]
    digests += [d ^ 0xFFFF for d in digests[:50]]  # neighbours in the same top-16-bit bucket
    for n in (1, 7, 100, 2500, len(digests)):
        t = eval_threshold(lambda: iter(digests), n)
        assert sum(d <= t for d in digests) == n
        assert t == sorted(digests)[n - 1]
    assert eval_threshold(lambda: iter(digests), 0) == 0


def test_eval_cut_and_size() -> None:
    assert eval_cut(0.0) == 0
    assert eval_cut(0.5) == 1 << 63
    with pytest.raises(PlanError):
        eval_cut(1.0)
    assert eval_size(120, 1000, (5000, None), 10) == 120
    assert eval_size(7000, 70000, (5000, None), 16) == 5000
    assert eval_size(7000, 70000, (5000, 300), 16) == 300
    assert eval_size(3, 12, (None,), 10) == 2  # keeps the model's minimum in train


def test_digest_set_finds_duplicates_and_grows() -> None:
    seen = DigestSet(capacity=16)
    digests = [digest_of(str(i).encode()) for i in range(10_000)]
    assert all(seen.add(d) for d in digests)
    assert not any(seen.add(d) for d in digests[::7])
    assert len(seen) == 10_000
    assert sorted(seen) == sorted(digests)
    assert seen.nbytes == 8 * 32768


def _prepare(path: Path, out: Path, **kwargs: object) -> tuple[list[str], list[str]]:
    result = prepare_dataset([str(path)], "text-bison@002", str(out), **kwargs)  # type: ignore[arg-type]
    train = Path(result.train_uri).read_text().splitlines()
    evals = Path(result.eval_uri).read_text().splitlines() if result.eval_uri else []
    return train, evals


def test_same_examples_in_another_order_give_the_same_split(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    lines = [palm_line(i) for i in range(400)]
    shuffled = lines[:]
    random.Random(1).shuffle(shuffled)
    train_a, eval_a = _prepare(write_lines("a.jsonl", lines), tmp_path / "a")
    train_b, eval_b = _prepare(write_lines("b.jsonl", shuffled), tmp_path / "b")
    assert set(eval_a) == set(eval_b) and set(train_a) == set(train_b)
    assert 20 <= len(eval_a) <= 60  # ~10% of 400 by hash
    assert not set(eval_a) & set(train_a)
    # Growing the dataset never moves an existing example between splits.
    train_c, eval_c = _prepare(
        write_lines("c.jsonl", lines + [palm_line(i) for i in range(400, 800)]), tmp_path / "c"
    )
    assert set(eval_a) <= set(eval_c) and set(train_a) <= set(train_c)


def test_split_is_stable_across_runs_and_keeps_input_order(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_lines("d.jsonl", [palm_line(i) for i in range(200)])
    first = prepare_dataset([str(path)], "text-bison@002", str(tmp_path / "1"))
    second = prepare_dataset([str(path)], "text-bison@002", str(tmp_path / "2"))
    assert first.content_sha256 == second.content_sha256
    assert Path(first.train_uri).read_bytes() == Path(second.train_uri).read_bytes()
    lines = Path(first.train_uri).read_text().splitlines()
    numbers = [int(json.loads(line)["input_text"].split()[-1].rstrip("?")) for line in lines]
    assert numbers == sorted(numbers)


def test_eval_cap_keeps_the_smallest_digests_and_moves_the_rest_to_train(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_lines("e.jsonl", [palm_line(i) for i in range(300)])
    train, evals = _prepare(path, tmp_path / "capped", eval_fraction=0.5, max_eval_examples=20)
    assert len(evals) == 20 and len(train) == 280
    all_digests = sorted(digest_of(line.encode()) for line in train + evals)
    assert sorted(digest_of(line.encode()) for line in evals) == all_digests[:20]


def test_gemini_eval_is_capped_at_5000(write_lines: Callable[..., Path], tmp_path: Path) -> None:
    path = write_lines("g.jsonl", [palm_line(i) for i in range(12_000)])
    result = prepare_dataset([str(path)], "gemini-2.5-flash", str(tmp_path / "g"), eval_fraction=0.5)
    assert result.counts["eval"] == 5000
    assert result.counts["train"] == 7000
    assert len(Path(result.eval_uri or "").read_text().splitlines()) == 5000


def test_no_eval_file_when_the_fraction_is_zero(write_lines: Callable[..., Path], tmp_path: Path) -> None:
    path = write_lines("z.jsonl", [palm_line(i) for i in range(30)])
    result = prepare_dataset([str(path)], "text-bison@002", str(tmp_path / "z"), eval_fraction=0.0)
    assert result.eval_uri is None and result.counts["eval"] == 0
    assert not (tmp_path / "z" / "eval.jsonl").exists()
