"""The model catalog: which method tunes which base model, its limits, and the retirement warning."""

from __future__ import annotations

import datetime as dt

import pytest
from aria_tuning.catalog import DataFormat, TuningMethod, get_model, model_names
from aria_tuning.errors import CatalogError

PALM = ["text-bison@001", "text-bison@002", "text-bison-32k"]
GEMINI = ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash-001"]


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
    assert spec.retirement_warning() is None
    with pytest.raises(CatalogError, match="Vertex chooses the hardware"):
        spec.accelerator("TPU")


def test_text_bison_token_limits() -> None:
    spec = get_model("text-bison@001")
    assert (spec.max_input_tokens, spec.max_output_tokens) == (8_192, 1_024)


def test_palm_tuning_retirement_names_the_date_and_the_replacement() -> None:
    spec = get_model("text-bison@002")
    assert spec.retirement_warning(dt.date(2025, 4, 8)) is None
    warning = spec.retirement_warning(dt.date(2025, 4, 9))
    assert warning is not None and "2025-04-09" in warning and "gemini-2.5-flash" in warning


def test_unknown_model_and_wrong_region_are_named() -> None:
    assert set(PALM + GEMINI) == set(model_names())
    with pytest.raises(CatalogError, match=r"unknown base model 'palm-3'.*text-bison@001"):
        get_model("palm-3")
    with pytest.raises(CatalogError, match="not offered in mars-north1"):
        get_model("gemini-2.5-flash").region_for(region="mars-north1")
