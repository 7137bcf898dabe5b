"""Traffic-split arithmetic as properties: every split adds up, and the new model gets its share."""

from __future__ import annotations

import math
from types import SimpleNamespace

from aria_tuning.traffic import canary_split, scaled_split, split_without
from hypothesis import given
from hypothesis import strategies as st

#: Deployed-model ids as Vertex writes them (decimal strings; "0" means "the model being deployed").
deployed_ids = st.integers(1, 10**12).map(str)
shares = st.dictionaries(deployed_ids, st.integers(0, 100), max_size=8)
positive_shares = st.dictionaries(deployed_ids, st.integers(1, 10**6), min_size=1, max_size=8)
percents = st.integers(1, 100)


@given(current=shares, percent=percents)
def test_a_canary_split_adds_up_to_100_and_gives_the_new_model_what_was_asked(
    current: dict[str, int], percent: int
) -> None:
    split = canary_split(current, percent)
    assert sum(split.values()) == 100
    assert split["0"] >= percent
    assert all(share >= 0 for share in split.values())
    serving = {k for k, v in current.items() if v > 0}
    assert set(split) == {"0"} | (serving if percent < 100 else set())
    if serving and percent < 100:
        assert split["0"] == percent  # the others keep exactly the rest


@given(shares=positive_shares, total=st.integers(0, 100))
def test_scaled_shares_add_up_exactly_and_keep_their_proportions(shares: dict[str, int], total: int) -> None:
    split = scaled_split(shares, total)
    assert sum(split.values()) == total and set(split) == set(shares)
    whole = sum(shares.values())
    for key, share in shares.items():
        assert split[key] >= math.floor(total * share / whole)  # rounding only ever adds
    first = next(iter(shares))
    assert all(split[k] == total * v // whole for k, v in shares.items() if k != first)


@given(traffic=shares, removed=deployed_ids, keep=st.one_of(st.none(), deployed_ids))
def test_traffic_without_a_model_is_100_or_nothing_and_never_names_it(
    traffic: dict[str, int], removed: str, keep: str | None
) -> None:
    endpoint = SimpleNamespace(traffic_split=traffic)
    split = split_without(endpoint, removed, keep)
    if keep and keep != removed:
        assert split == {keep: 100}
        return
    others = {k for k, v in traffic.items() if k != removed and v > 0}
    assert set(split) == others and removed not in split
    assert sum(split.values()) == (100 if others else 0)
    assert all(share >= 0 for share in split.values())
