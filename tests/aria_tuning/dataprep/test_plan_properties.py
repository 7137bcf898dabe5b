"""The plan's step arithmetic as properties: exactly the ceiling, and more work never means fewer steps."""

from __future__ import annotations

from fractions import Fraction

from aria_tuning.dataprep.plan import train_steps_for
from hypothesis import given
from hypothesis import strategies as st

#: Epochs as a trigger form gives them: whole or with a few decimals (0.1 has no exact float).
epochs = st.decimals(min_value="0.01", max_value="50", places=2).map(float)
examples = st.integers(1, 2_000_000)
batches = st.integers(1, 1024)


@given(epochs, examples, batches)
def test_steps_are_exactly_the_ceiling_of_epochs_times_examples_over_batch(
    epoch_count: float, train_examples: int, batch: int
) -> None:
    steps = train_steps_for(epoch_count, train_examples, batch)
    work = Fraction(str(epoch_count)) * train_examples  # examples seen, in exact arithmetic
    assert steps >= 1
    assert (steps - 1) * batch < work <= steps * batch or (steps == 1 and work <= batch)


@given(epochs, epochs, examples, examples, batches)
def test_more_epochs_or_examples_never_plan_fewer_steps(
    e1: float, e2: float, n1: int, n2: int, batch: int
) -> None:
    (low_e, high_e), (low_n, high_n) = sorted((e1, e2)), sorted((n1, n2))
    assert train_steps_for(low_e, low_n, batch) <= train_steps_for(high_e, high_n, batch)


@given(epochs, examples, batches, batches)
def test_a_larger_batch_never_plans_more_steps(
    epoch_count: float, train_examples: int, b1: int, b2: int
) -> None:
    small, large = sorted((b1, b2))
    assert train_steps_for(epoch_count, train_examples, large) <= train_steps_for(
        epoch_count, train_examples, small
    )
