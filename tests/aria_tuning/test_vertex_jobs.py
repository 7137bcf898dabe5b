"""Pure decisions of the tuning operator: validation, identity, re-attach or resubmit, request bodies."""

from __future__ import annotations

import re

import pytest
from aria_tuning import resources
from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import TUNE_LARGE_MODEL_TEMPLATE, TuningMethod
from aria_tuning.errors import CatalogError, ConfigurationError, PlanError, VertexError

GOOD = dict(
    base_model="text-bison@001",
    project="aria-local",
    region=None,
    training_data_uri="gs://aria-datasets/prepared/v=1/train.jsonl",
    evaluation_data_uri="gs://aria-datasets/prepared/v=1/eval.jsonl",
    train_steps=10,
    max_train_steps=100,
    accelerator="TPU",
    pipeline_root="gs://aria-pipeline-root",
)


def validate(**arguments: object) -> vj.TuningRequest:
    """The request from arguments given one by one: the plan's fields travel as one `plan` value."""
    from tests.aria_tuning.conftest import as_plan

    return vj.validate_tuning_request(**as_plan(arguments))


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"base_model": "gpt-9"}, CatalogError, "unknown base model 'gpt-9'"),
        ({"accelerator": "GPU", "region": "europe-west4"}, CatalogError, "runs only in us-central1"),
        ({"accelerator": "FPGA"}, CatalogError, "accelerator 'FPGA' is not offered"),
        ({"train_steps": 101}, PlanError, "above the plan's maximum of 100"),
        ({"train_steps": "ten"}, ConfigurationError, "train_steps must be a whole number"),
        ({"train_steps": None}, ConfigurationError, "train_steps is required"),
        ({"training_data_uri": "/tmp/train.jsonl"}, ConfigurationError, "training_data_uri must be a gs://"),
        (
            {"evaluation_data_uri": "s3://b/eval.jsonl"},
            ConfigurationError,
            "evaluation_data_uri must be a gs://",
        ),
        ({"pipeline_root": None}, ConfigurationError, "pipeline_root is required"),
        ({"learning_rate_multiplier": 0}, ConfigurationError, "learning_rate_multiplier must be in"),
        ({"project": None}, ConfigurationError, "no GCP project"),
        (
            {"base_model": "gemini-2.5-flash", "region": "mars-west1"},
            CatalogError,
            "not offered in mars-west1",
        ),
        ({"base_model": "gemini-2.5-flash", "adapter_size": 3}, ConfigurationError, "adapter_size 3"),
    ],
)
def test_bad_parameters_are_named(change: dict, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=re.escape(words)):
        validate(**{**GOOD, **change})


def test_templated_strings_are_coerced_and_region_follows_the_accelerator() -> None:
    request = validate(**{**GOOD, "train_steps": "12", "learning_rate_multiplier": "0.5"})
    assert (request.train_steps, request.learning_rate_multiplier, request.region) == (
        12,
        0.5,
        "europe-west4",
    )
    assert validate(**{**GOOD, "accelerator": "GPU"}).region == "us-central1"


def test_pipeline_body_uses_the_template_and_its_parameter_names() -> None:
    request = validate(**GOOD, labels={"Dataset Version": "2024-01-01"})
    body = vj.pipeline_job_body(request, "k" * 20, 2)
    params = body["runtime_config"]["parameter_values"]
    assert body["template_uri"] == TUNE_LARGE_MODEL_TEMPLATE
    assert params["large_model_reference"] == "text-bison@001"
    assert params["dataset_uri"] == GOOD["training_data_uri"]
    assert params["evaluation_data_uri"] == GOOD["evaluation_data_uri"]
    assert (params["train_steps"], params["accelerator_type"], params["location"]) == (
        10,
        "TPU",
        "europe-west4",
    )
    assert body["labels"] == {
        "dataset-version": "2024-01-01",
        vj.LABEL_RUN_KEY: "k" * 20,
        vj.LABEL_ATTEMPT: "2",
    }


def test_tuning_job_body_is_supervised_with_epochs() -> None:
    request = validate(**{**GOOD, "base_model": "gemini-2.5-flash", "epochs": 2, "adapter_size": 4})
    body = vj.tuning_job_body(request, "key", 1)
    assert request.method is TuningMethod.TUNING_JOB and request.region == "us-central1"
    assert body["supervised_tuning_spec"]["hyper_parameters"] == {
        "epoch_count": 2,
        "learning_rate_multiplier": 1.0,
        "adapter_size": "ADAPTER_SIZE_FOUR",
    }
    assert body["supervised_tuning_spec"]["validation_dataset_uri"] == GOOD["evaluation_data_uri"]


def test_identity_ignores_the_try_number_and_job_ids_are_valid() -> None:
    key = vj.run_key("aria_text", "manual__2024-01-01", "tune", -1)
    assert key == vj.run_key("aria_text", "manual__2024-01-01", "tune", -1)
    assert key != vj.run_key("aria_text", "manual__2024-01-01", "tune", 0)
    job = vj.job_id("Tune_Model", key, 3)
    assert re.fullmatch(r"[a-z][-a-z0-9]{0,127}", job) and job.endswith("-a3")


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], ("submit", 1, None, None)),
        ([("j1", 1, "RUNNING")], ("attach", 1, "j1", "RUNNING")),
        ([("j1", 1, "PAUSED")], ("attach", 1, "j1", "PAUSED")),
        ([("j1", 1, "SUCCEEDED")], ("attach", 1, "j1", "SUCCEEDED")),
        ([("j1", 1, "FAILED")], ("submit", 2, "j1", "FAILED")),
        ([("j1", 1, "FAILED"), ("j2", 2, "CANCELLED")], ("submit", 3, "j2", "CANCELLED")),
        ([("j1", 1, "FAILED"), ("j2", 2, "EXPIRED"), ("j3", 3, "PENDING")], ("attach", 3, "j3", "PENDING")),
        # Vertex lists in no promised order: the highest attempt decides, wherever it is listed.
        ([("j3", 3, "PENDING"), ("j1", 1, "FAILED"), ("j2", 2, "EXPIRED")], ("attach", 3, "j3", "PENDING")),
        ([("j2", 2, "FAILED"), ("j1", 1, "SUCCEEDED")], ("submit", 3, "j2", "FAILED")),
        ([("j2", 2, "RUNNING"), ("j1", 1, "FAILED")], ("attach", 2, "j2", "RUNNING")),
        (
            [("j1", 1, "CANCELLED"), ("j10", 10, "SUCCEEDED"), ("j9", 9, "FAILED")],
            ("attach", 10, "j10", "SUCCEEDED"),
        ),
    ],
)
def test_decide_reattaches_unless_the_latest_attempt_ended_badly(existing: list, expected: tuple) -> None:
    decision = vj.decide(existing)
    assert (decision.action, decision.attempt, decision.job_name, decision.state) == expected


def test_existing_jobs_keep_the_run_keys_jobs_with_their_attempts() -> None:
    listed = [
        ("j2", {vj.LABEL_RUN_KEY: "k", vj.LABEL_ATTEMPT: "2"}, "FAILED"),
        ("other", {vj.LABEL_RUN_KEY: "not-k", vj.LABEL_ATTEMPT: "7"}, "RUNNING"),
        ("j1", {vj.LABEL_RUN_KEY: "k"}, "CANCELLED"),  # labelled before attempts were: the first
        ("j0", {vj.LABEL_RUN_KEY: "k", vj.LABEL_ATTEMPT: ""}, "EXPIRED"),
    ]
    assert vj.existing_jobs(listed, "k") == [
        ("j2", 2, "FAILED"),
        ("j1", 1, "CANCELLED"),
        ("j0", 1, "EXPIRED"),
    ]
    assert [name for name, _, _ in vj.existing_jobs(listed)] == ["j2", "other", "j1", "j0"]


@pytest.mark.parametrize("label", ["two", "2.0", "a3"])
def test_an_attempt_label_that_is_not_a_number_names_the_job(label: str) -> None:
    job = "projects/p/locations/europe-west4/pipelineJobs/someone-elses"
    listed = [
        ("j1", {vj.LABEL_RUN_KEY: "k", vj.LABEL_ATTEMPT: "1"}, "FAILED"),
        (job, {vj.LABEL_RUN_KEY: "k", vj.LABEL_ATTEMPT: label}, "RUNNING"),
    ]
    with pytest.raises(
        VertexError, match=re.escape(f"label {vj.LABEL_ATTEMPT}={label!r} is not an attempt number")
    ) as raised:
        vj.existing_jobs(listed, "k")
    assert raised.value.resource == job and str(raised.value).startswith(f"{job}: ")


def test_short_state_and_console_urls() -> None:
    assert vj.short_state("PIPELINE_STATE_SUCCEEDED") == vj.SUCCEEDED == vj.short_state("JOB_STATE_SUCCEEDED")
    name = "projects/aria-local/locations/europe-west4/pipelineJobs/aria-tune-x-a1"
    assert resources.job_console_url(name, "pipeline") == (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west4/pipelines/runs/aria-tune-x-a1"
        "?project=aria-local"
    )
    assert resources.model_console_url("projects/p/locations/us-central1/models/42@3").endswith(
        "/models/locations/us-central1/models/42/versions/3?project=p"
    )


@pytest.mark.parametrize("base_model", ["text-bison@001", "gemini-2.5-flash"])
def test_service_account_and_cmek_reach_both_job_bodies(base_model: str) -> None:
    key = "projects/aria-local/locations/europe-west4/keyRings/aria/cryptoKeys/tuning"
    request = validate(
        **{**GOOD, "base_model": base_model, "epochs": 1, "region": None},
        service_account="tuner@aria-local.iam.gserviceaccount.com",
        kms_key_name=key,
    )
    pipeline = request.method is TuningMethod.PIPELINE
    body = (vj.pipeline_job_body if pipeline else vj.tuning_job_body)(request, "key", 1)
    assert body["service_account"] == "tuner@aria-local.iam.gserviceaccount.com"
    assert body["encryption_spec"] == {"kms_key_name": key}
    if pipeline:  # the template also takes the key as a parameter, for what it creates
        assert body["runtime_config"]["parameter_values"]["encryption_spec_key_name"] == key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("Dataset Version", "dataset-version"),
        ("2024-run", "k-2024-run"),
        ("_team", "k-_team"),
        ("ÄRIA", "ria"),
    ],
)
def test_label_keys_start_with_a_letter_as_vertex_requires(key: str, expected: str) -> None:
    assert resources.label_key(key) == expected


@pytest.mark.parametrize("key", ["---", "日本", ""])
def test_a_label_key_with_nothing_vertex_accepts_is_refused_naming_it(key: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(repr(key))):
        resources.label_key(key)
