"""Where a finished tuning run reports its curve: the pipeline's scalars, a Gemini job's stats instead."""

from __future__ import annotations

from typing import Any

import pytest
from aria_tuning import training_curve
from google.cloud import aiplatform_v1

EXPERIMENT = "projects/p/locations/us-central1/metadataStores/default/contexts/tuning-experiment-20261201"


def as_dict(message: Any) -> dict[str, Any]:
    """A job as TuningJobHook.get_job returns it: proto field names, int64 as the proto JSON's strings."""
    return dict(type(message).to_dict(message, use_integers_for_enums=False))


def gemini_job(**stats: int) -> dict[str, Any]:
    supervised = aiplatform_v1.SupervisedTuningDataStats(**stats)
    return as_dict(
        aiplatform_v1.TuningJob(
            name="projects/p/locations/us-central1/tuningJobs/7",
            experiment=EXPERIMENT,
            tuning_data_stats=aiplatform_v1.TuningDataStats(supervised_tuning_data_stats=supervised),
        )
    )


def test_a_gemini_job_reports_its_data_stats_and_its_experiment() -> None:
    job = gemini_job(
        tuning_dataset_example_count=240, tuning_step_count=90, total_billable_token_count=123_456
    )
    assert training_curve.job_stats(job) == training_curve.JobStats(240, 90, 123456, EXPERIMENT)
    assert training_curve.scalars_uri(job) is None  # and no scalars: the curve is in the Experiment


def test_a_pipeline_job_has_no_tuning_data_stats_but_names_its_scalars() -> None:
    job = as_dict(
        aiplatform_v1.PipelineJob(
            job_detail=aiplatform_v1.PipelineJobDetail(
                task_details=[
                    aiplatform_v1.PipelineTaskDetail(
                        task_name=training_curve.TUNER_TASK,
                        outputs={
                            training_curve.ARTIFACT: aiplatform_v1.PipelineTaskDetail.ArtifactList(
                                artifacts=[
                                    aiplatform_v1.Artifact(uri="gs://root/1/tuner/tensorboard_metrics/")
                                ]
                            )
                        },
                    )
                ]
            )
        )
    )
    assert training_curve.job_stats(job) is None
    assert training_curve.scalars_uri(job) == "gs://root/1/tuner/tensorboard_metrics/scalars.jsonl"


def test_unreadable_stats_name_the_job() -> None:
    job: dict[str, Any] = {
        "name": "projects/p/locations/l/tuningJobs/9",
        "tuning_data_stats": {"supervised_tuning_data_stats": {"tuning_step_count": "many"}},
    }
    with pytest.raises(ValueError, match=r"tuningJobs/9: unreadable tuning_data_stats"):
        training_curve.job_stats(job)


def test_the_scalars_parse_into_train_and_eval_loss_by_step() -> None:
    text = (
        '{"step": 2, "tag": "train/loss", "value": 1.5}\n'
        '{"step": 1, "tag": "train/loss", "value": 2.5}\n\n'
        '{"step": 2, "tag": "eval/loss", "value": 1.75}\n'
        '{"step": 2, "tag": "learning_rate", "value": 0.1}\n'
    )
    curve = training_curve.parse(text, "gs://b/scalars.jsonl")
    assert (curve.train, curve.eval) == ([(1, 2.5), (2, 1.5)], [(2, 1.75)])
    with pytest.raises(ValueError, match=r"gs://b/scalars.jsonl:2: not a scalar point"):
        training_curve.parse(
            '{"step": 1, "tag": "train/loss", "value": 1}\n{"step": 2}\n', "gs://b/scalars.jsonl"
        )
