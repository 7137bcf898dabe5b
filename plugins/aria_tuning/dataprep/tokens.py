"""Token estimates for the per-example limits, and their distribution for the report.

Method (no tokenizer is available offline, and a real one would cost more than the whole prep):
``ceil(ascii_chars / 4) + non_ascii_chars``. Google documents about four characters per token
for English text (PaLM and Gemini docs, "tokens"); text in other scripts (CJK, Cyrillic,
emoji...) tokenizes much more densely, so each non-ASCII character counts as a whole token.
The estimate leans high for non-English text: a limit it reports may be a few percent early,
never silently late by a factor of four.
"""

from __future__ import annotations

import operator
from collections import _count_elements  # type: ignore[attr-defined]
from itertools import repeat


def estimate_tokens(text: str) -> int:
    """Estimated token count of `text` (see the module docstring for the method)."""
    if text.isascii():  # O(1) in CPython: compact ASCII strings carry the flag
        return (len(text) + 3) >> 2
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ((ascii_chars + 3) >> 2) + len(text) - ascii_chars


_ascii_only = operator.methodcaller("encode", "ascii", "ignore")


def token_counts(texts: list[str]) -> list[int]:
    """`estimate_tokens` over a list, all in C (map): with `a` ASCII characters out of `n`,
    ceil(a / 4) + (n - a) == n - floor(3a / 4)."""
    three_quarters = map(
        operator.rshift, map(operator.mul, map(len, map(_ascii_only, texts)), repeat(3)), repeat(2)
    )
    return list(map(operator.sub, map(len, texts), three_quarters))


class TokenHistogram:
    """Exact percentiles of token counts in memory bounded by the number of distinct counts."""

    def __init__(self) -> None:
        #: token count -> examples; the hot path updates it directly.
        self.counts: dict[int, int] = {}

    def add(self, tokens: int) -> None:
        self.counts[tokens] = self.counts.get(tokens, 0) + 1

    def update(self, many: list[int]) -> None:
        """Count a block of token counts at C speed (Counter's helper works on any dict)."""
        _count_elements(self.counts, many)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def tokens(self) -> int:
        """The token count of every example added, summed."""
        return sum(tokens * examples for tokens, examples in self.counts.items())

    def percentile(self, pct: float) -> int:
        """Nearest-rank percentile (0 for an empty histogram)."""
        total = self.total
        if not total:
            return 0
        rank = max(1, -(-total * pct // 100))  # ceil without float rounding surprises
        seen = 0
        for value in sorted(self.counts):
            seen += self.counts[value]
            if seen >= rank:
                return value
        return max(self.counts)

    def summary(self) -> dict[str, int]:
        return {
            "p50": self.percentile(50),
            "p95": self.percentile(95),
            "max": max(self.counts, default=0),
        }


def mean_tokens_per_example(inputs: TokenHistogram, outputs: TokenHistogram) -> float | None:
    """Estimated input + output tokens of the average example (None: no example seen)."""
    examples = inputs.total
    return (inputs.tokens + outputs.tokens) / examples if examples else None
