"""The token estimate (one method, two implementations) and its percentiles."""

from __future__ import annotations

import random

import pytest
from aria_tuning.dataprep.tokens import TokenHistogram, estimate_tokens, token_counts


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("ñ", 1), ("añb", 2), ("日本語", 3), ("hola 日本", 2 + 2)],
)
def test_four_ascii_characters_per_token_and_one_per_other_character(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_bulk_counts_equal_the_reference() -> None:
    rng = random.Random(5)
    alphabet = "abc xyz.,ñéü日本🙂"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    assert token_counts(texts) == [estimate_tokens(t) for t in texts]


def test_histogram_percentiles() -> None:
    histogram = TokenHistogram()
    histogram.update(list(range(1, 101)))
    histogram.add(1000)
    assert histogram.summary() == {"p50": 51, "p95": 96, "max": 1000}
    assert TokenHistogram().summary() == {"p50": 0, "p95": 0, "max": 0}
