"""Planning: the step formula at its edges, batch sizes by accelerator, limits, Gemini epochs."""

from __future__ import annotations

import re

import pytest
from aria_tuning.catalog import get_model
from aria_tuning.dataprep import DEFAULT_MAX_TRAIN_STEPS, plan_tuning
from aria_tuning.dataprep.plan import train_steps_for
from aria_tuning.errors import CatalogError, PlanError


@pytest.mark.parametrize(
    ("epochs", "examples", "batch", "steps"),
    [
        (3, 5, 24, 1),  # fewer examples than one batch: one step
        (1, 1, 24, 1),
        (1, 24, 24, 1),  # exact multiple
        (1, 48, 24, 2),
        (3, 48, 24, 6),
        (1, 25, 24, 2),  # one over a multiple
        (0.1, 30, 3, 1),  # 0.1 x 30 / 3 is exactly 1: no float rounding up to 2
        (2.5, 10, 8, 4),  # ceil(3.125)
        (4, 1000, 8, 500),
    ],
)
def test_steps_are_ceil_of_epochs_times_examples_over_batch(
    epochs: float, examples: int, batch: int, steps: int
) -> None:
    assert train_steps_for(epochs, examples, batch) == steps


@pytest.mark.parametrize(
    ("epochs", "examples", "batch", "message"),
    [
        (0, 10, 8, "epochs must be positive, got 0"),
        (1, 0, 8, "no training examples"),
        (1, 10, 0, "batch size must be positive, got 0"),
        (-1, 10, 8, "epochs must be positive, got -1"),
    ],
)
def test_step_formula_rejects_non_positive_inputs(
    epochs: float, examples: int, batch: int, message: str
) -> None:
    with pytest.raises(PlanError, match=re.escape(message)):
        train_steps_for(epochs, examples, batch)


def test_tpu_plan_uses_the_documented_batch_and_region() -> None:
    plan = plan_tuning("text-bison@002", 1000, epochs=3)
    assert (plan.accelerator, plan.region, plan.batch_size) == ("TPU", "europe-west4", 24)
    assert plan.train_steps == 125  # ceil(3 * 1000 / 24)
    assert plan.epochs_covered == pytest.approx(125 * 24 / 1000)
    assert plan.eta_seconds == 125 * 9.0
    assert (plan.eta_low_seconds, plan.eta_high_seconds) == (125 * 7.2, 125 * 10.8)
    assert "europe-west4" in plan.batch_size_source or "TPU" in plan.batch_size_source
    assert plan.max_train_steps == DEFAULT_MAX_TRAIN_STEPS


def test_gpu_plan_and_32k_tpu_batch() -> None:
    gpu = plan_tuning("text-bison@001", 100, epochs=4, accelerator="gpu")
    assert (gpu.accelerator, gpu.region, gpu.batch_size, gpu.train_steps) == ("GPU", "us-central1", 8, 50)
    assert plan_tuning("text-bison-32k", 100, accelerator="TPU").batch_size == 8


def test_user_batch_size_and_steps_override() -> None:
    plan = plan_tuning("text-bison@001", 100, epochs=3, batch_size=64)
    assert (plan.batch_size, plan.batch_size_source, plan.train_steps) == (64, "user override", 5)
    fixed = plan_tuning("text-bison@001", 100, train_steps=10)
    assert fixed.train_steps == 10 and fixed.epochs_covered == pytest.approx(2.4)


def test_plans_over_the_step_limit_are_refused() -> None:
    with pytest.raises(PlanError, match=r"12,500 training steps is over the limit of 10,000"):
        plan_tuning("text-bison@001", 100_000, epochs=3)
    assert plan_tuning("text-bison@001", 100_000, epochs=3, max_train_steps=20_000).train_steps == 12_500


def test_unknown_accelerator_names_the_choices() -> None:
    with pytest.raises(CatalogError, match=r"choose one of \['GPU', 'TPU'\]"):
        plan_tuning("text-bison@001", 100, accelerator="TPUv5")


def test_gemini_plans_epochs_and_adapter_size_not_steps() -> None:
    plan = plan_tuning("gemini-2.5-flash", 500, epochs=4, adapter_size=8)
    assert plan.method == "tuning_job"
    assert (plan.train_steps, plan.accelerator, plan.batch_size) == (None, None, None)
    assert (plan.epochs, plan.epochs_covered, plan.adapter_size) == (4, 4, 8)
    assert plan.region in get_model("gemini-2.5-flash").regions
    assert "tuningJobs" in plan.summary()
    with pytest.raises(PlanError, match="adapter size 16 is not offered"):
        plan_tuning("gemini-2.5-pro", 500, adapter_size=16)
    with pytest.raises(PlanError, match="whole number of epochs"):
        plan_tuning("gemini-2.5-flash", 500, epochs=2.5)


def test_plan_dict_and_summary() -> None:
    plan = plan_tuning("text-bison@001", 240, epochs=3)
    data = plan.to_dict()
    assert data["train_steps"] == 30 and data["method"] == "pipeline"
    text = plan.summary()
    assert "train_steps = ceil(3 epochs x 240 / 24) = 30" in text
    assert "europe-west4" in text
