"""The model catalog: which method tunes which base model, its limits, and the retirement warning."""

from __future__ import annotations

import datetime as dt

import pytest
from aria_tuning.catalog import DEFAULT_MODEL, DataFormat, TuningMethod, get_model, model_names
from aria_tuning.errors import CatalogError

PALM = ["text-bison@001", "text-bison@002", "text-bison-32k"]
#: Tunable on Vertex today (catalog.TUNABLE_MODELS_SOURCE), and the 2.x models past their retirement.
GEMINI_CURRENT = ["gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.1-flash-lite"]
GEMINI_RETIRED = {
    "gemini-2.5-pro": dt.date(2026, 6, 17),
    "gemini-2.5-flash": dt.date(2026, 6, 17),
    "gemini-2.5-flash-lite": dt.date(2026, 7, 22),
    "gemini-2.0-flash-001": dt.date(2026, 2, 5),
}
GEMINI = GEMINI_CURRENT + list(GEMINI_RETIRED)


@pytest.mark.parametrize("name", PALM)
def test_palm_models_run_the_pipeline_on_tpu_or_gpu(name: str) -> None:
    spec = get_model(name)
    assert (spec.method, spec.data_format) == (TuningMethod.PIPELINE, DataFormat.PALM)
    assert spec.region_for("TPU") == "europe-west4" and spec.region_for("GPU") == "us-central1"
    assert spec.default_accelerator == "TPU"


@pytest.mark.parametrize("name", GEMINI)
def test_gemini_models_use_tuning_jobs_with_capped_validation_sets(name: str) -> None:
    spec = get_model(name)
    assert (spec.method, spec.data_format) == (TuningMethod.TUNING_JOB, DataFormat.GEMINI)
    assert spec.max_eval_examples == 5_000 and spec.region_for() == "us-central1"
    assert spec.tuning_price is not None and spec.tuning_price.unit == "1M training tokens"
    assert spec.eta_range_seconds is not None and "Google publishes no duration" in spec.eta_source
    with pytest.raises(CatalogError, match="Vertex chooses the hardware"):
        spec.accelerator("TPU")


@pytest.mark.parametrize("name", GEMINI_CURRENT)
def test_current_gemini_models_are_not_retired(name: str) -> None:
    assert get_model(name).retirement_warning(dt.date(2026, 12, 1)) is None


@pytest.mark.parametrize(("name", "retired_on"), GEMINI_RETIRED.items())
def test_gemini_2_models_warn_from_their_vertex_retirement_date(name: str, retired_on: dt.date) -> None:
    spec = get_model(name)
    assert spec.retirement_warning(retired_on - dt.timedelta(days=1)) is None
    warning = spec.retirement_warning(retired_on)
    assert warning is not None and f"{retired_on:%Y-%m-%d}" in warning
    assert spec.replacement in GEMINI_CURRENT


def test_the_default_is_a_current_gemini_model_and_the_seed_model_stays() -> None:
    """A first real run must succeed: the default is tunable today. The seed's text-bison@001 stays."""
    assert DEFAULT_MODEL == "gemini-3.5-flash" and DEFAULT_MODEL in GEMINI_CURRENT
    assert get_model(DEFAULT_MODEL).retirement_warning() is None
    assert model_names()[0] == "text-bison@001"


def test_every_price_says_where_it_comes_from() -> None:
    for name in model_names():
        spec = get_model(name)
        prices = [a.price_per_hour for a in spec.accelerators.values()] + [spec.tuning_price]
        for price in filter(None, prices):
            assert price.usd > 0 and "cloud.google.com" in price.source and price.as_of
        assert any(prices), f"{name} has no price"


def test_text_bison_token_limits() -> None:
    spec = get_model("text-bison@001")
    assert (spec.max_input_tokens, spec.max_output_tokens) == (8_192, 1_024)


def test_palm_tuning_retirement_names_the_date_and_the_replacement() -> None:
    spec = get_model("text-bison@002")
    assert spec.retirement_warning(dt.date(2025, 4, 8)) is None
    warning = spec.retirement_warning(dt.date(2025, 4, 9))
    assert warning is not None and "2025-04-09" in warning and DEFAULT_MODEL in warning


def test_unknown_model_and_wrong_region_are_named() -> None:
    assert set(PALM + GEMINI) == set(model_names())
    with pytest.raises(CatalogError, match=r"unknown base model 'palm-3'.*text-bison@001"):
        get_model("palm-3")
    with pytest.raises(CatalogError, match="not offered in mars-north1"):
        get_model(DEFAULT_MODEL).region_for(region="mars-north1")
