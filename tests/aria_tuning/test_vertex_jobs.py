"""Pure decisions of the tuning operator: validation, identity, re-attach or resubmit, request bodies."""

from __future__ import annotations

import re
from types import SimpleNamespace

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
    assert isinstance(raised.value.__cause__, ValueError)  # raised from int()'s error, not `from None`


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


def _error(**arguments: object) -> str:
    """The exact message validation refuses these arguments with."""
    with pytest.raises((ConfigurationError, PlanError, CatalogError)) as refused:
        validate(**arguments)
    return str(refused.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_steps": 0}, "train_steps must be positive, got 0"),
        ({"max_train_steps": "many"}, "max_train_steps must be a whole number, got 'many'"),
        ({"adapter_size": "big"}, "adapter_size must be a whole number, got 'big'"),
        ({"learning_rate_multiplier": "fast"}, "learning_rate_multiplier must be a number, got 'fast'"),
        ({"learning_rate_multiplier": 100.5}, "learning_rate_multiplier must be in (0, 100], got 100.5"),
        ({"training_data_uri": None}, "training_data_uri is required (a gs:// URI)"),
        ({"project": ""}, "no GCP project: pass project_id or set `project` on the connection"),
        ({"base_model": None}, "plan names no base model (plan.model)"),
        ({"tuned_model_display_name": ""}, "tuned_model_display_name must have 1 to 128 characters"),
        ({"tuned_model_display_name": "m" * 129}, "tuned_model_display_name must have 1 to 128 characters"),
        ({"base_model": "gemini-2.5-flash", "epochs": 0}, "epochs must be positive, got 0"),
    ],
)
def test_each_refusal_says_exactly_what_is_wrong(change: dict, message: str) -> None:
    assert _error(**{**GOOD, **change}) == message


def test_a_plan_that_is_not_one_or_has_unknown_fields_is_refused() -> None:
    with pytest.raises(ConfigurationError) as refused:
        vj.validate_tuning_request(plan=["text-bison@001"], project="p", training_data_uri="gs://b/t")  # type: ignore[arg-type]
    assert str(refused.value) == "plan must be the mapping data prep returns, got list"
    with pytest.raises(ConfigurationError) as refused:
        vj.validate_tuning_request(
            plan={"model": "text-bison@001", "steps": 3, "colour": "red"},
            project="p",
            training_data_uri="gs://b/t",
        )
    assert (
        str(refused.value) == f"plan has unknown fields ['colour', 'steps']; expected {list(vj.PLAN_FIELDS)}"
    )


def test_the_request_carries_every_value_as_given_or_defaulted() -> None:
    plan = {"model": "text-bison@001", "train_steps": 100, "max_train_steps": 100, "accelerator": "GPU"}
    request = vj.validate_tuning_request(
        plan={**plan, "method": "pipeline", "eta_seconds": 5.0},  # informative fields are allowed
        project="aria-local",
        training_data_uri="gs://aria-datasets/t.jsonl",
        evaluation_data_uri="",
        learning_rate_multiplier=100,
        pipeline_root="gs://aria-pipeline-root",
        labels={"Dataset Version": "2024-01-01"},
        service_account="",
        kms_key_name="",
    )
    assert request == vj.TuningRequest(
        model=request.model,
        project="aria-local",
        region="us-central1",
        training_data_uri="gs://aria-datasets/t.jsonl",
        evaluation_data_uri=None,
        train_steps=100,  # as many as the plan allows
        epochs=None,
        learning_rate_multiplier=100.0,
        accelerator="GPU",
        tuned_model_display_name="ARIA-text",
        pipeline_root="gs://aria-pipeline-root",
        labels={"dataset-version": "2024-01-01"},
        service_account=None,
        kms_key_name=None,
        adapter_size=None,
    )
    assert request.model.name == "text-bison@001"


def test_a_gemini_request_takes_epochs_as_the_plan_writes_them_and_no_pipeline_settings() -> None:
    request = vj.validate_tuning_request(
        plan={"model": "gemini-2.5-flash", "epochs": 3.0, "train_steps": "", "adapter_size": None},
        project="aria-local",
        training_data_uri="gs://aria-datasets/t.jsonl",
        pipeline_root="gs://ignored",
    )
    assert (request.epochs, request.train_steps, request.adapter_size) == (3, None, None)
    assert request.accelerator is None and request.pipeline_root is None
    assert request.region == "us-central1" and request.method is TuningMethod.TUNING_JOB


def test_the_pipeline_body_is_exactly_what_the_template_takes() -> None:
    request = validate(**{**GOOD, "learning_rate_multiplier": 0.5}, tuned_model_display_name="m" * 128)
    body = vj.pipeline_job_body(request, "key", 7)
    assert body == {
        "display_name": ("m" * 128 + "-tuning-a7")[:128],
        "template_uri": TUNE_LARGE_MODEL_TEMPLATE,
        "runtime_config": {
            "gcs_output_directory": "gs://aria-pipeline-root",
            "parameter_values": {
                "project": "aria-local",
                "location": "europe-west4",
                "large_model_reference": "text-bison@001",
                "model_display_name": "m" * 128,
                "dataset_uri": GOOD["training_data_uri"],
                "train_steps": 10,
                "learning_rate_multiplier": 0.5,
                "accelerator_type": "TPU",
                "evaluation_data_uri": GOOD["evaluation_data_uri"],
            },
        },
        "labels": {vj.LABEL_RUN_KEY: "key", vj.LABEL_ATTEMPT: "7"},
    }


def test_the_tuning_job_body_is_exactly_a_supervised_spec() -> None:
    request = validate(**{**GOOD, "base_model": "gemini-2.5-flash", "epochs": 2, "evaluation_data_uri": None})
    assert vj.tuning_job_body(request, "key", 4) == {
        "base_model": "gemini-2.5-flash",
        "tuned_model_display_name": "ARIA-text",
        "supervised_tuning_spec": {
            "training_dataset_uri": GOOD["training_data_uri"],
            "hyper_parameters": {"epoch_count": 2, "learning_rate_multiplier": 1.0},
        },
        "labels": {vj.LABEL_RUN_KEY: "key", vj.LABEL_ATTEMPT: "4"},
    }


@pytest.mark.parametrize(
    ("state", "short"),
    [
        ("PIPELINE_STATE_RUNNING", "RUNNING"),
        ("JOB_STATE_CANCELLED", "CANCELLED"),
        ("google.cloud.aiplatform.v1.PipelineState.PIPELINE_STATE_PAUSED", "PAUSED"),  # str() of an enum
        (SimpleNamespace(name="JOB_STATE_SUCCEEDED"), "SUCCEEDED"),  # a proto enum member
        ("SUCCEEDED", "SUCCEEDED"),
    ],
)
def test_short_state(state: object, short: str) -> None:
    assert vj.short_state(state) == short


@pytest.mark.parametrize(
    ("task_id", "expected"),
    [
        ("Tune_Model", "aria-tune-model-k-a3"),
        ("-tune-", "aria-tune-k-a3"),
        ("___", "aria-task-k-a3"),
        ("t" * 50, f"aria-{'t' * 40}-k-a3"),
    ],
)
def test_job_ids_are_a_slug_of_the_task_the_key_and_the_attempt(task_id: str, expected: str) -> None:
    assert vj.job_id(task_id, "k", 3) == expected


def test_run_keys_are_20_hex_digits_and_identity_labels_are_label_safe() -> None:
    key = vj.run_key("aria_text", "manual__2024-01-01", "tune", -1)
    assert re.fullmatch(r"[0-9a-f]{20}", key)
    assert vj.identity_labels("Aria_Text", "manual__2024-01-01T00:00:00+00:00", "tune") == {
        vj.LABEL_DAG: "aria_text",
        vj.LABEL_DAG_RUN: "manual__2024-01-01t00-00-00-00-00",
        vj.LABEL_TASK: "tune",
    }


def _pipeline_job(**execution: dict) -> dict:
    return {
        "name": "projects/p/locations/europe-west4/pipelineJobs/j",
        "state": "PIPELINE_STATE_FAILED",
        "error": {"message": "quota"},
        "create_time": "2024-01-01T00:00:00Z",
        "start_time": "2024-01-01T00:01:00Z",
        "end_time": "2024-01-01T01:00:00Z",
        "job_detail": {
            "task_details": [
                {
                    "task_name": "validate-pipeline",
                    "execution": {"metadata": {"output:model_resource_name": "no"}},
                },
                *({"task_name": name, "execution": {"metadata": meta}} for name, meta in execution.items()),
            ]
        },
    }


def test_a_pipeline_jobs_outputs_come_from_its_upload_and_deploy_tasks() -> None:
    job = _pipeline_job(
        **{
            "upload-llm-model": {"output:model_resource_name": " projects/p/locations/l/models/9 \n"},
            "deploy-llm-model": {"output:endpoint_resource_name": "projects/p/locations/l/endpoints/5"},
        }
    )
    assert vj.job_outputs(job, "pipeline") == (
        "projects/p/locations/l/models/9",
        "projects/p/locations/l/endpoints/5",
    )
    older = _pipeline_job(**{"upload-model": {"output:model_resource_name": "m"}, "deploy-model": {}})
    assert vj.job_outputs(older, TuningMethod.PIPELINE) == ("m", None)
    assert vj.job_outputs({"name": "j"}, "pipeline") == (None, None)
    assert vj.job_summary(job, "pipeline") == {
        "job": "projects/p/locations/europe-west4/pipelineJobs/j",
        "state": "FAILED",
        "method": "pipeline",
        "message": "quota",
        "tuned_model": "projects/p/locations/l/models/9",
        "endpoint": "projects/p/locations/l/endpoints/5",
        "create_time": "2024-01-01T00:00:00Z",
        "start_time": "2024-01-01T00:01:00Z",
        "end_time": "2024-01-01T01:00:00Z",
    }


def test_a_tuning_jobs_outputs_come_from_its_tuned_model() -> None:
    job = {"name": "t", "state": "JOB_STATE_SUCCEEDED", "tuned_model": {"model": "m@1", "endpoint": "e"}}
    assert vj.job_outputs(job, "tuning_job") == ("m@1", "e")
    assert vj.job_outputs({"tuned_model": {"model": "", "endpoint": ""}}, "tuning_job") == (None, None)
    summary = vj.job_summary(job, "tuning_job")
    assert summary == {
        "job": "t",
        "state": "SUCCEEDED",
        "method": "tuning_job",
        "message": "",
        "tuned_model": "m@1",
        "endpoint": "e",
        "create_time": None,
        "start_time": None,
        "end_time": None,
    }
    unknown = vj.job_summary({"error": None}, "tuning_job")
    assert (unknown["state"], unknown["message"], unknown["job"]) == ("", "", None)
