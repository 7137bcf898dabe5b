"""Scoring for the quality gate: exact match and text similarity of answers to held-out examples.

Pure functions, no Airflow and no Google import. Similarity is rapidfuzz's normalised Indel
ratio (`fuzz.ratio`, 0..1); the score is the mean of the exact-match rate and mean similarity.
The held-out examples are read by dataprep's parsers (`dataprep.held_out`), re-exported here
for the gate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aria_tuning.dataprep.held_out import HeldOut, held_out_examples

__all__ = ["HeldOut", "Score", "held_out_examples", "normalise", "score", "similarity"]


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def similarity(expected: str, answer: str) -> float:
    from rapidfuzz import fuzz

    return float(fuzz.ratio(normalise(expected), normalise(answer))) / 100.0


@dataclass(frozen=True)
class Score:
    exact_match: float
    similarity: float
    score: float
    count: int


def score(pairs: list[tuple[str, str]]) -> Score:
    """Score (expected, answer) pairs: mean of exact-match rate and mean similarity, each 0..1."""
    if not pairs:
        return Score(0.0, 0.0, 0.0, 0)
    exact = sum(normalise(e) == normalise(a) for e, a in pairs) / len(pairs)
    sim = sum(similarity(e, a) for e, a in pairs) / len(pairs)
    return Score(round(exact, 4), round(sim, 4), round((exact + sim) / 2, 4), len(pairs))
