"""tuningJobs (Gemini supervised tuning) through GAPIC REST and google-genai."""

from __future__ import annotations

import re
from typing import Any

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
    assert not created.experiment  # named once tuning starts

    job = wait_for(lambda: gapic.tuning.get_tuning_job(name=created.name), lambda j: terminal_job(j.state))

    assert job.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED, job.error.message
    assert job.tuned_model.model.endswith("@1")
    # Where Vertex keeps the job's tuning metrics: its Vertex AI Experiment, an ML Metadata context.
    assert re.fullmatch(
        rf"{gpu_parent}/metadataStores/default/contexts/tuning-experiment-\d{{20}}", job.experiment
    ), job.experiment
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


def run_tuning(gapic: Gapic, parent: str, job: aiplatform_v1.TuningJob) -> aiplatform_v1.TuningJob:
    created = gapic.tuning.create_tuning_job(parent=parent, tuning_job=job)
    done = wait_for(lambda: gapic.tuning.get_tuning_job(name=created.name), lambda j: terminal_job(j.state))
    assert done.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED, done.error.message
    return done


def tokens(text: str) -> int:
    """The emulator's token estimate, written out: four characters a token, rounded up."""
    return -(-len(text) // 4)


def test_each_epoch_leaves_a_checkpoint_deployed_on_its_own_endpoint(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    job = run_tuning(gapic, gpu_parent, tuning_job(upload("t.jsonl", gemini_rows("ck", 20)), epochs=3))

    checkpoints = job.tuned_model.checkpoints
    assert [(c.checkpoint_id, c.epoch, c.step) for c in checkpoints] == [
        ("1", 1, 3),
        ("2", 2, 6),
        ("3", 3, 9),
    ]
    assert len({c.endpoint for c in checkpoints}) == 3
    assert job.tuned_model.endpoint == checkpoints[-1].endpoint  # the default checkpoint's endpoint
    for checkpoint in checkpoints:
        deployed = gapic.endpoints.get_endpoint(name=checkpoint.endpoint).deployed_models
        assert [(d.model, d.checkpoint_id) for d in deployed] == [
            (job.tuned_model.model.split("@")[0], checkpoint.checkpoint_id)
        ]
    model = gapic.models.get_model(name=job.tuned_model.model)
    assert [(c.checkpoint_id, c.epoch, c.step) for c in model.checkpoints] == [
        ("1", 1, 3),
        ("2", 2, 6),
        ("3", 3, 9),
    ]
    assert model.default_checkpoint_id == "3"


def test_many_epochs_leave_about_ten_checkpoints_the_last_after_the_final_epoch(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    job = run_tuning(gapic, gpu_parent, tuning_job(upload("t.jsonl", gemini_rows("many", 8)), epochs=25))
    epochs = [c.epoch for c in job.tuned_model.checkpoints]
    assert len(epochs) == 10 and epochs == sorted(set(epochs)) and epochs[-1] == 25


def test_export_last_checkpoint_only_leaves_no_intermediate_checkpoints(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    job = tuning_job(upload("t.jsonl", gemini_rows("last", 8)), epochs=4)
    job.supervised_tuning_spec.export_last_checkpoint_only = True
    done = run_tuning(gapic, gpu_parent, job)
    assert not done.tuned_model.checkpoints and done.tuned_model.endpoint
    assert not gapic.models.get_model(name=done.tuned_model.model).checkpoints


def test_tuning_data_stats_describe_the_dataset(gapic: Gapic, gpu_parent: str, upload: Upload) -> None:
    rows = gemini_rows("stats", 10)
    rows[0]["contents"][0]["parts"][0]["text"] = "a much longer question " * 10
    rows[1]["contents"].extend(
        [
            {"role": "user", "parts": [{"text": "and then?"}]},
            {"role": "model", "parts": [{"text": "then this"}]},
        ]
    )
    job = run_tuning(gapic, gpu_parent, tuning_job(upload("t.jsonl", rows), epochs=2))

    stats = job.tuning_data_stats.supervised_tuning_data_stats
    texts = [[(c["role"], c["parts"][0]["text"]) for c in row["contents"]] for row in rows]
    inputs = [sum(tokens(t) for role, t in row if role == "user") for row in texts]
    outputs = [sum(tokens(t) for role, t in row if role == "model") for row in texts]
    assert stats.tuning_dataset_example_count == 10
    assert stats.total_tuning_character_count == sum(len(t) for row in texts for _, t in row)
    assert stats.total_billable_token_count == 2 * (sum(inputs) + sum(outputs))
    assert stats.tuning_step_count == 2 * 2  # 2 epochs x ceil(10 / 8)
    distribution = stats.user_input_token_distribution
    assert (distribution.sum, distribution.min_, distribution.max_) == (sum(inputs), min(inputs), max(inputs))
    assert distribution.mean == pytest.approx(sum(inputs) / 10)
    assert distribution.median == sorted(inputs)[4] and distribution.p95 == max(inputs)
    assert sum(bucket.count for bucket in distribution.buckets) == 10
    assert stats.user_output_token_distribution.sum == sum(outputs)
    assert stats.user_message_per_example_distribution.max_ == 4
    assert [e.parts[0].text for e in stats.user_dataset_examples] == [t[0][1] for t in texts[:3]]


def test_continuing_from_a_tuned_model_adds_a_version_that_knows_both_datasets(
    gapic: Gapic, gpu_parent: str, upload: Upload
) -> None:
    first = run_tuning(gapic, gpu_parent, tuning_job(upload("a.jsonl", gemini_rows("first", 8)), epochs=2))
    follow_up = tuning_job(upload("b.jsonl", gemini_rows("second", 8)), epochs=1)
    follow_up.pre_tuned_model = aiplatform_v1.PreTunedModel(
        tuned_model_name=first.tuned_model.model, checkpoint_id="1"
    )

    second = run_tuning(gapic, gpu_parent, follow_up)

    assert second.pre_tuned_model.base_model == "gemini-2.0-flash-001"  # output only, filled by Vertex
    assert second.tuned_model.model == first.tuned_model.model.replace("@1", "@2")
    for question, answer in (
        ("question 3 about first", "first answer 3"),
        ("question 5 about second", "second answer 5"),
    ):
        response = gapic.prediction.generate_content(
            model=second.tuned_model.endpoint,
            contents=[aiplatform_v1.Content(role="user", parts=[aiplatform_v1.Part(text=question)])],
        )
        assert response.candidates[0].content.parts[0].text == answer
    renamed = tuning_job(upload("c.jsonl", gemini_rows("third", 8)), epochs=1)
    renamed.pre_tuned_model = aiplatform_v1.PreTunedModel(tuned_model_name=second.tuned_model.model)
    renamed.tuned_model_display_name = "a new name"
    third = run_tuning(gapic, gpu_parent, renamed)
    assert third.tuned_model.model.endswith("@1")  # a new display name makes a new model


@pytest.mark.parametrize(
    ("pre_tuned", "error", "message"),
    [
        (lambda tuned, plain: f"{tuned.rsplit('/', 1)[0]}/987654", exceptions.NotFound, "not found"),
        (lambda tuned, plain: plain, exceptions.BadRequest, "was not produced by a Gemini tuning job"),
        (lambda tuned, plain: tuned, exceptions.BadRequest, "checkpoint_id '9' is not a checkpoint"),
    ],
)
def test_a_pre_tuned_model_must_exist_and_be_tuned(
    gapic: Gapic, gpu_parent: str, upload: Upload, pre_tuned: Any, error: type[Exception], message: str
) -> None:
    tuned = run_tuning(gapic, gpu_parent, tuning_job(upload("a.jsonl", gemini_rows("pre", 8)), epochs=1))
    plain = gapic.models.upload_model(
        parent=gpu_parent, model=aiplatform_v1.Model(display_name="plain")
    ).result(timeout=10)
    job = tuning_job("gs://emulator-tests/b.jsonl")
    name = pre_tuned(tuned.tuned_model.model, plain.model)
    job.pre_tuned_model = aiplatform_v1.PreTunedModel(
        tuned_model_name=name, checkpoint_id="9" if name == tuned.tuned_model.model else ""
    )
    with pytest.raises(error, match=re.escape(message)):
        gapic.tuning.create_tuning_job(parent=gpu_parent, tuning_job=job)


def test_google_genai_continues_tuning_from_a_checkpoint(
    vertex_emulator: str, project: str, upload: Upload
) -> None:
    client = genai_client(vertex_emulator, project)
    config = genai_types.CreateTuningJobConfig(epoch_count=2, tuned_model_display_name="genai-ck")
    first = client.tunings.tune(
        base_model="gemini-2.0-flash-001",
        training_dataset=genai_types.TuningDataset(gcs_uri=upload("a.jsonl", gemini_rows("g-one", 8))),
        config=config,
    )
    first = wait_for(lambda: client.tunings.get(name=first.name), lambda j: j.has_ended)
    assert first.tuned_model and first.tuned_model.checkpoints and first.tuned_model.model
    assert [c.checkpoint_id for c in first.tuned_model.checkpoints] == ["1", "2"]

    second = client.tunings.tune(
        base_model=first.tuned_model.model,  # a projects/... name: google-genai sends preTunedModel
        training_dataset=genai_types.TuningDataset(gcs_uri=upload("b.jsonl", gemini_rows("g-two", 8))),
        config=genai_types.CreateTuningJobConfig(
            epoch_count=1, pre_tuned_model_checkpoint_id="1", export_last_checkpoint_only=True
        ),
    )
    second = wait_for(lambda: client.tunings.get(name=second.name), lambda j: j.has_ended)
    assert second.state == genai_types.JobState.JOB_STATE_SUCCEEDED
    assert second.pre_tuned_model and second.pre_tuned_model.checkpoint_id == "1"
    assert second.tuned_model and not second.tuned_model.checkpoints
    assert second.tuned_model.model and second.tuned_model.model.endswith("@2")
