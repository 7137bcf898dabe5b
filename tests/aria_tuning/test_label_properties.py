"""Label sanitising as properties: whatever a DAG id, run id or dataset version holds, Vertex accepts it."""

from __future__ import annotations

import re

import pytest
from aria_tuning.errors import ConfigurationError
from aria_tuning.resources import label_key, label_value
from hypothesis import given
from hypothesis import strategies as st

#: Google's label rules (cloud.google.com/resource-manager/docs/labels-overview#requirements).
VALUE = re.compile(r"[a-z0-9_-]{0,63}")
KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
anything = st.one_of(st.text(max_size=200), st.integers(), st.floats(allow_nan=True), st.none())


@given(anything)
def test_a_label_value_is_always_one_vertex_accepts(value: object) -> None:
    label = label_value(value)
    assert VALUE.fullmatch(label), label
    assert label_value(value) == label  # the same run labels its jobs the same way every time


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=63).filter(
        lambda s: s.strip("-") == s
    )
)
def test_a_value_that_is_already_valid_is_kept(value: str) -> None:
    assert label_value(value) == value


@given(anything)
def test_a_label_key_starts_with_a_letter_or_is_refused(key: object) -> None:
    if not label_value(key):
        with pytest.raises(ConfigurationError, match="has no letter or digit Vertex accepts"):
            label_key(key)
        return
    assert KEY.fullmatch(label_key(key)), label_key(key)
