"""The split and dedup rules as properties: deterministic, disjoint, and blind to the input's order."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from aria_tuning.dataprep.digests import DigestSet, digests_of
from aria_tuning.dataprep.split_rule import count_candidates, eval_cut, eval_size, eval_threshold
from aria_tuning.dataprep.split_writer import SplitWriter
from aria_tuning.errors import PlanError
from hypothesis import given
from hypothesis import strategies as st

#: Odd 64-bit digests (`digest_of` forces the low bit: 0 marks an empty DigestSet slot); some share
#: their top 16 bits, the radix select's bucket, so its in-bucket pass has work to do.
bucket_mates = st.integers(0, (1 << 48) - 1).map(lambda low: (0xA5A5 << 48) | low | 1)
digests = st.one_of(st.integers(0, (1 << 64) - 1).map(lambda d: d | 1), bucket_mates)
unique_digests = st.lists(digests, unique=True, max_size=300)
fractions = st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.25, 0.5, 0.9, 0.999])
#: Distinct examples as a writer receives them (converted JSONL lines, no newline).
examples = st.lists(
    st.text(min_size=1, max_size=12).map(lambda t: f'{{"x": {t!r}}}'.encode()), unique=True, max_size=60
)


@given(unique_digests, st.data())
def test_the_threshold_keeps_exactly_the_n_smallest_in_any_order(
    found: list[int], data: st.DataObject
) -> None:
    n = data.draw(st.integers(0, len(found)))
    shuffled = data.draw(st.permutations(found))
    threshold = eval_threshold(lambda: iter(found), n)
    assert threshold == eval_threshold(lambda: iter(shuffled), n)
    assert sum(d <= threshold for d in found) == n
    assert threshold == (sorted(found)[n - 1] if n else 0)


@given(st.lists(digests, max_size=300), st.data(), fractions)
def test_candidates_depend_on_each_digest_alone(
    found: list[int], data: st.DataObject, fraction: float
) -> None:
    shuffled = data.draw(st.permutations(found))
    assert count_candidates(found, fraction) == count_candidates(shuffled, fraction)
    assert count_candidates(found, fraction) == sum(d < eval_cut(fraction) for d in found)


@given(st.lists(fractions, min_size=2, max_size=2, unique=True))
def test_a_larger_fraction_cuts_higher(pair: list[float]) -> None:
    low, high = sorted(pair)
    assert 0 <= eval_cut(low) < eval_cut(high) < 1 << 64


@given(
    candidates=st.integers(0, 10**6),
    extra=st.integers(0, 10**6),
    caps=st.lists(st.one_of(st.none(), st.integers(0, 10**6)), max_size=3),
    min_train=st.integers(0, 10**4),
)
def test_eval_size_is_within_every_cap_and_leaves_the_minimum_in_train(
    candidates: int, extra: int, caps: list[int | None], min_train: int
) -> None:
    unique = candidates + extra
    size = eval_size(candidates, unique, caps, min_train)
    limits = [candidates, *(c for c in caps if c is not None), unique - min_train]
    assert size == max(0, min(limits))


@given(st.lists(digests, max_size=300), st.data())
def test_dedup_keeps_the_first_of_each_digest_whatever_the_order(
    found: list[int], data: st.DataObject
) -> None:
    table = DigestSet(capacity=data.draw(st.integers(1, 64)))  # small: it has to grow
    duplicates = table.add_many(found)
    seen: set[int] = set()
    assert duplicates == [i for i, d in enumerate(found) if d in seen or seen.add(d)]  # type: ignore[func-returns-value]
    assert len(table) == len(seen) and set(table) == seen
    again = DigestSet(capacity=4)
    assert [again.add(d) for d in data.draw(st.permutations(found))].count(True) == len(seen)
    assert set(again) == seen


@given(examples, fractions, st.data())
def test_the_split_is_disjoint_complete_and_blind_to_order_and_blocks(
    lines: list[bytes], fraction: float, data: st.DataObject
) -> None:
    first = _split(lines, fraction, blocks=[len(lines)])
    train, held_out = first
    assert train.isdisjoint(held_out) and train | held_out == set(lines)
    shuffled = data.draw(st.permutations(lines))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(lines)), max_size=4)))
    assert (
        _split(
            shuffled, fraction, blocks=[b - a for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
        )
        == first
    )


def _split(lines: list[bytes], fraction: float, blocks: list[int]) -> tuple[set[bytes], set[bytes]]:
    """(train, eval) lines as SplitWriter writes them, fed in `blocks` of these sizes."""
    with SplitWriter(fraction) as writer, tempfile.TemporaryDirectory() as out:
        start = 0
        for size in blocks:
            block = lines[start : start + size]
            start += size
            if block:
                writer.write_block(block, digests_of(block))
        n_eval = eval_size(writer.candidates, len(lines), caps=(), min_train=1)
        writer.finish(n_eval)
        writer.publish(f"{out}/train.jsonl", f"{out}/eval.jsonl")
        train = set(Path(out, "train.jsonl").read_bytes().splitlines())
        held_out = set(Path(out, "eval.jsonl").read_bytes().splitlines())
    assert len(held_out) == n_eval
    return train, held_out


def test_the_rules_edges_are_exact() -> None:
    cut = eval_cut(0.1)  # odd: a digest can sit exactly on it
    assert cut % 2 == 1 and count_candidates([cut - 2, cut, cut + 2], 0.1) == 1  # below the cut only
    with pytest.raises(PlanError) as refused:
        eval_cut(1.0)
    assert str(refused.value) == "eval_fraction must be in [0, 1), got 1.0"
    with pytest.raises(ValueError) as refused_n:
        eval_threshold(lambda: iter([1, 3, 5]), 4)
    assert str(refused_n.value) == "n_eval=4 is more than the 3 digests"
