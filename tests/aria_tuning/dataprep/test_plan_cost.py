"""The plan's time and money: an ETA range and a cost for both methods, each figure with its source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import A100_80GB_8_PRICE, TPU_V3_64_PRICE, get_model
from aria_tuning.dataprep import plan_tuning, prepare_dataset
from aria_tuning.dataprep.tokens import TokenHistogram, mean_tokens_per_example

from tests.aria_tuning.dataprep.conftest import gemini_line, palm_line


@pytest.mark.parametrize(("accelerator", "price"), [("TPU", TPU_V3_64_PRICE), ("GPU", A100_80GB_8_PRICE)])
def test_a_pipeline_plan_costs_its_duration_at_the_hardware_price(accelerator: str, price: object) -> None:
    plan = plan_tuning("text-bison@002", 2_400, epochs=3, accelerator=accelerator)
    assert plan.train_steps is not None and plan.eta_low_seconds is not None
    hourly = price.usd  # type: ignore[attr-defined]
    assert plan.cost_low_usd == round(plan.train_steps * 7.2 / 3600 * hourly, 2)
    assert plan.cost_high_usd == round(plan.train_steps * 10.8 / 3600 * hourly, 2)
    summary = plan.summary()
    assert f"estimated cost ${plan.cost_low_usd:,.2f} to ${plan.cost_high_usd:,.2f}" in summary
    assert price.source in summary  # type: ignore[attr-defined]


def test_a_gemini_plan_costs_training_tokens_times_epochs_at_the_model_price() -> None:
    plan = plan_tuning("gemini-3.5-flash", 1_000, epochs=4, tokens_per_example=250.0)
    price = get_model("gemini-3.5-flash").tuning_price
    assert price is not None
    assert plan.training_tokens == 1_000 * 250 * 4
    assert plan.cost_low_usd == plan.cost_high_usd == round(1_000_000 / 1_000_000 * price.usd, 2)
    assert (plan.eta_low_seconds, plan.eta_high_seconds) == (3_600.0, 14_400.0)
    # No point estimate: the trigger's finish-aware polling is not built on a third-party range.
    assert plan.eta_seconds is None
    summary = plan.summary()
    assert "training tokens (estimated tokens of the training split x epochs): 1,000,000" in summary
    assert "takes 1.0 h to 4.0 h" in summary and f"costs ${plan.cost_low_usd:,.2f}" in summary
    assert (
        "Google publishes no duration" in summary
        and "cloud.google.com/vertex-ai/generative-ai/pricing" in summary
    )


def test_without_a_token_estimate_the_gemini_cost_says_so() -> None:
    plan = plan_tuning("gemini-3.5-flash", 100, epochs=1)
    assert plan.cost_low_usd is None and plan.cost_source == "no token estimate"
    assert "costs unknown (no token estimate)" in plan.summary()


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [("text-bison@001", {"epochs": 3}), ("gemini-3.5-flash", {"epochs": 2, "tokens_per_example": 99.5})],
)
def test_the_plan_stays_json_and_the_tuning_request_accepts_its_new_fields(
    model: str, kwargs: dict[str, object]
) -> None:
    plan = plan_tuning(model, 300, **kwargs).to_dict()  # type: ignore[arg-type]
    assert json.loads(json.dumps(plan)) == plan
    request = vj.validate_tuning_request(
        plan=plan,
        project="p",
        training_data_uri="gs://aria-data/train.jsonl",
        pipeline_root="gs://aria-root/p",
    )
    assert request.model.name == model


def test_mean_tokens_per_example_sums_both_histograms() -> None:
    inputs, outputs = TokenHistogram(), TokenHistogram()
    inputs.update([10, 10, 40])
    outputs.update([5, 5, 5])
    assert mean_tokens_per_example(inputs, outputs) == (60 + 15) / 3
    assert mean_tokens_per_example(TokenHistogram(), TokenHistogram()) is None


def test_prepare_puts_the_token_based_cost_in_the_plan_and_the_report(
    write_lines: Callable[..., Path], tmp_path: Path
) -> None:
    out = tmp_path / "prepared"
    sources = [str(write_lines("in.jsonl", [gemini_line(i) for i in range(200)]))]
    result = prepare_dataset(sources, "gemini-3.5-flash", str(out), epochs=3)
    plan = result.plan
    assert plan.training_tokens is not None and plan.training_tokens > 3 * plan.train_examples
    report = json.loads((out / "report.json").read_text())
    assert report["plan"]["training_tokens"] == plan.training_tokens
    assert report["plan"]["cost_low_usd"] == plan.cost_low_usd is not None
    palm = prepare_dataset(
        [str(write_lines("p.jsonl", [palm_line(i) for i in range(200)]))],
        "text-bison@002",
        str(tmp_path / "p"),
    )
    assert palm.plan.cost_low_usd is not None and palm.plan.cost_low_usd < palm.plan.cost_high_usd  # type: ignore[operator]
