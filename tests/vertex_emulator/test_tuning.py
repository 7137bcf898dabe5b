"""tuningJobs (Gemini supervised tuning) through GAPIC REST and google-genai."""

from __future__ import annotations

import pytest
from google import genai
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.genai import types as genai_types
from google.oauth2.credentials import Credentials

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import GPU_REGION, Gapic, Upload, gemini_rows, terminal_job, wait_for

Spec = aiplatform_v1.SupervisedTuningSpec


def tuning_job(train: str, validation: str = "", epochs: int = 2, **labels: str) -> aiplatform_v1.TuningJob:
    return aiplatform_v1.TuningJob(
        base_model="gemini-2.0-flash-001",
        tuned_model_display_name="gemini-tuned",
        labels=labels,
        supervised_tuning_spec=Spec(
            training_dataset_uri=train,
            validation_dataset_uri=validation,
            hyper_parameters=aiplatform_v1.SupervisedHyperParameters(
                epoch_count=epochs,
                learning_rate_multiplier=1.0,
                adapter_size=aiplatform_v1.SupervisedHyperParameters.AdapterSize.ADAPTER_SIZE_FOUR,
            ),
        ),
    )


def genai_client(url: str, project: str) -> genai.Client:
    # google-genai refreshes AnonymousCredentials (and fails); a fixed bearer token is what it needs.
    return genai.Client(
        vertexai=True,
        project=project,
        location=GPU_REGION,
        credentials=Credentials(token="emulator"),
        http_options=genai_types.HttpOptions(base_url=url),
    )


def test_tuning_job_succeeds_with_tuned_model_endpoint_and_stats(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    train = upload("train.jsonl", gemini_rows("g1", 16))
    created = gapic.tuning.create_tuning_job(parent=gpu_parent, tuning_job=tuning_job(train, run="r1"))
    assert created.name.startswith(f"{gpu_parent}/tuningJobs/")
    assert created.state == aiplatform_v1.JobState.JOB_STATE_PENDING

    job = wait_for(lambda: gapic.tuning.get_tuning_job(name=created.name), lambda j: terminal_job(j.state))

    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED, job.error.message
    assert job.tuned_model.model.endswith("@1")
    stats = job.tuning_data_stats.supervised_tuning_data_stats
    assert stats.tuning_dataset_example_count == 16
    assert stats.tuning_step_count == 2 * 2  # 2 epochs x ceil(16 / 8)
    endpoint = gapic.endpoints.get_endpoint(name=job.tuned_model.endpoint)
    assert endpoint.deployed_models[0].model == job.tuned_model.model.split("@")[0]
    response = gapic.prediction.generate_content(
        model=job.tuned_model.endpoint,
        contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text="question 5 about g1")])],
    )
    assert response.candidates[0].content.parts[0].text == "g1 answer 5"


def test_list_filters_on_labels_and_cancel(gapic: Gapic, gpu_parent: str, upload: Upload) -> None:
    train = upload("train.jsonl", gemini_rows("g2"))
    first = gapic.tuning.create_tuning_job(
        parent=gpu_parent, tuning_job=tuning_job(train, epochs=100, run="a")
    )
    gapic.tuning.create_tuning_job(parent=gpu_parent, tuning_job=tuning_job(train, run="b"))
    listed = list(gapic.tuning.list_tuning_jobs(request={"parent": gpu_parent, "filter": 'labels.run="a"'}))
    assert [job.name for job in listed] == [first.name]
    assert len(list(gapic.tuning.list_tuning_jobs(parent=gpu_parent))) == 2

    gapic.tuning.cancel_tuning_job(name=first.name)
    job = wait_for(lambda: gapic.tuning.get_tuning_job(name=first.name), lambda j: terminal_job(j.state))
    assert job.state == aiplatform_v1.JobState.JOB_STATE_CANCELLED
    with pytest.raises(exceptions.NotFound):
        gapic.tuning.cancel_tuning_job(name=f"{gpu_parent}/tuningJobs/999999")


def test_bad_dataset_line_fails_the_job_naming_file_and_line(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    rows = gemini_rows("g3", 3)
    rows[1]["contents"][0]["role"] = "assistant"
    train = upload("train.jsonl", rows)
    job = gapic.tuning.create_tuning_job(parent=gpu_parent, tuning_job=tuning_job(train))
    job = wait_for(lambda: gapic.tuning.get_tuning_job(name=job.name), lambda j: terminal_job(j.state))
    assert job.state == aiplatform_v1.JobState.JOB_STATE_FAILED
    assert f"{train}:2: contents[0].role must be 'user' or 'model'" in job.error.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda job: setattr(job, "base_model", "text-bison@001"), "does not support supervised tuning"),
        (lambda job: setattr(job.supervised_tuning_spec, "training_dataset_uri", ""), "training_dataset_uri"),
        (
            lambda job: setattr(job.supervised_tuning_spec, "training_dataset_uri", "/tmp/x.jsonl"),
            "gs:// URI",
        ),
        (
            lambda job: setattr(job.supervised_tuning_spec.hyper_parameters, "epoch_count", 1000),
            "epoch_count",
        ),
    ],
)
def test_bad_spec_is_400(gapic: Gapic, gpu_parent: str, change: object, message: str) -> None:
    job = tuning_job("gs://emulator-tests/t.jsonl")
    change(job)  # type: ignore[operator]
    with pytest.raises(exceptions.BadRequest, match=message):
        gapic.tuning.create_tuning_job(parent=gpu_parent, tuning_job=job)


def test_forcing_a_tuning_job_to_fail(
    gapic: Gapic, gpu_parent: str, upload: Upload, vertex_emulator: str
) -> None:
    job = gapic.tuning.create_tuning_job(
        parent=gpu_parent, tuning_job=tuning_job(upload("t.jsonl", gemini_rows("g4")), epochs=100)
    )
    emulator_control(vertex_emulator, f"jobs/{job.name}:fail", {"message": "RESOURCE_EXHAUSTED"})
    job = gapic.tuning.get_tuning_job(name=job.name)
    assert job.state == aiplatform_v1.JobState.JOB_STATE_FAILED
    assert job.error.message == "RESOURCE_EXHAUSTED"


def test_google_genai_tunes_and_generates(vertex_emulator: str, project: str, upload: Upload) -> None:
    client = genai_client(vertex_emulator, project)
    train = upload("train.jsonl", gemini_rows("genai", 8))
    job = client.tunings.tune(
        base_model="gemini-2.0-flash-001",
        training_dataset=genai_types.TuningDataset(gcs_uri=train),
        config=genai_types.CreateTuningJobConfig(epoch_count=1, tuned_model_display_name="via-genai"),
    )
    assert job.name and "/tuningJobs/" in job.name
    job = wait_for(lambda: client.tunings.get(name=job.name), lambda j: j.has_ended)
    assert job.state == genai_types.JobState.JOB_STATE_SUCCEEDED
    assert job.tuned_model and job.tuned_model.endpoint
    assert [j.name for j in client.tunings.list()] == [job.name]

    answer = client.models.generate_content(model=job.tuned_model.endpoint, contents="question 2 about genai")
    assert answer.text == "genai answer 2"
    base = client.models.generate_content(model="gemini-2.0-flash-001", contents="question 2 about genai")
    assert base.text == "[gemini-2.0-flash-001] question 2 about genai"
