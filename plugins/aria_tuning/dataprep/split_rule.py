"""The split rule: which examples go to eval, and how many (written out by `split_writer`).

An example is an eval candidate when its digest (SHA-256 of the converted example, see
`digests.digest_of`) is below `eval_fraction x 2^64`: the decision depends on the example alone,
so the same example lands in the same split on any machine, in any file order, in any dataset
version. When the candidates exceed a cap (the catalog's `max_eval_examples`, e.g. 5,000 for
Gemini validation sets; the caller's `max_eval_examples`; the model's minimum training set), the
ones with the smallest digests stay in eval and the rest go to train.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

from aria_tuning.catalog import ModelSpec
from aria_tuning.errors import PlanError

_DIGEST_SPACE = 1 << 64


def eval_cut(eval_fraction: float) -> int:
    """Digests below this are eval candidates (0: none)."""
    if not 0.0 <= eval_fraction < 1.0:
        raise PlanError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    return int(Fraction(str(eval_fraction)) * _DIGEST_SPACE)


def count_candidates(digests: Iterable[int], eval_fraction: float) -> int:
    """How many of these example digests are eval candidates."""
    cut = eval_cut(eval_fraction)
    return sum(1 for digest in digests if digest < cut)


def eval_size(candidates: int, unique_examples: int, caps: Iterable[int | None], min_train: int) -> int:
    """How many candidates stay in eval: all of them, within every cap, leaving `min_train`."""
    n_eval = min([candidates, *(c for c in caps if c is not None)])
    return max(0, min(n_eval, unique_examples - min_train))


def eval_size_for(
    spec: ModelSpec, candidates: int, unique_examples: int, max_eval_examples: int | None = None
) -> int:
    """The eval split's size for `spec`, as `prepare_dataset` writes it and `vertex-tuning plan`
    reports it: within the catalog's cap (what Vertex accepts) and the caller's, leaving the
    model's minimum number of examples in train."""
    caps = (spec.max_eval_examples, max_eval_examples)
    return eval_size(candidates, unique_examples, caps, spec.min_examples)


def eval_threshold(digests: Callable[[], Iterable[int]], n_eval: int) -> int:
    """The digest `t` such that exactly the `n_eval` smallest digests are `<= t` (0: none).

    `digests` is called twice (two streaming passes). Radix select with a 65,536-bucket
    histogram of the top 16 bits: constant memory, no sort of up to a million Python ints.
    """
    if n_eval <= 0:
        return 0
    counts = [0] * 65536
    for digest in digests():
        counts[digest >> 48] += 1
    if n_eval > sum(counts):
        raise ValueError(f"n_eval={n_eval} is more than the {sum(counts)} digests")
    seen = bucket = 0
    while seen + counts[bucket] < n_eval:
        seen += counts[bucket]
        bucket += 1
    in_bucket = sorted(digest for digest in digests() if digest >> 48 == bucket)
    return in_bucket[n_eval - seen - 1]
