"""Deterministic train/eval split: an example's stable digest, not its position, decides.

The eval set is the `n_eval` examples with the smallest digests (SHA-256 of the converted
example, see `digests.digest_of`): the same examples land in the same split on any machine
and in any file order, and the eval size is exact even under a cap (Gemini: 5,000).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from aria_tuning.errors import PlanError


def eval_size(unique_examples: int, eval_fraction: float, max_eval: int | None, min_train: int) -> int:
    """How many examples go to eval: floor(fraction x examples), capped, keeping `min_train`."""
    if not 0.0 <= eval_fraction < 1.0:
        raise PlanError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    n_eval = math.floor(unique_examples * eval_fraction)
    if max_eval is not None:
        n_eval = min(n_eval, max_eval)
    return max(0, min(n_eval, unique_examples - min_train))


def eval_threshold(digests: Iterable[int], n_eval: int) -> int:
    """The digest `t` such that exactly the `n_eval` smallest digests are `<= t` (0: none).

    Radix select in two passes over the digests with a 65,536-bucket histogram of their top
    16 bits: constant memory whatever the dataset size, no sort of a million Python ints.
    """
    if n_eval <= 0:
        return 0
    counts = [0] * 65536
    for digest in digests:
        counts[digest >> 48] += 1
    if n_eval > sum(counts):
        raise ValueError(f"n_eval={n_eval} is more than the {sum(counts)} digests")
    seen = bucket = 0
    while seen + counts[bucket] < n_eval:
        seen += counts[bucket]
        bucket += 1
    in_bucket = sorted(digest for digest in digests if digest >> 48 == bucket)
    return in_bucket[n_eval - seen - 1]
