"""The tuning curve of a finished run: where the job reports it, and the scalars read back.

The tune-large-model tuner names its TensorBoard scalars directory as the `tensorboard_metrics` output
artifact of its task (`jobDetail.taskDetails[].outputs`); the scalars there are JSON lines of
`{"step", "tag", "value"}` with tags `train/loss` and `eval/loss` (eval loss only when the run had an
evaluation dataset). A Gemini tuning job carries no curve: TuningJob (google/cloud/aiplatform/v1/
tuning_job.proto) reports `tuning_data_stats` (examples, steps, billable tokens of its dataset) and
`experiment`, the Vertex AI Experiment where Vertex keeps its tuning metrics, which is not read here;
`job_stats` reads those two. Pure functions, no Airflow and no Google import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TUNER_TASK = "large-language-model-tuner"
ARTIFACT = "tensorboard_metrics"
SCALARS = "scalars.jsonl"
TRAIN, EVAL = "train/loss", "eval/loss"


@dataclass(frozen=True)
class Curve:
    train: list[tuple[int, float]] = field(default_factory=list)
    eval: list[tuple[int, float]] = field(default_factory=list)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"train_loss": self.train, "eval_loss": self.eval, "source": self.source}


@dataclass(frozen=True)
class JobStats:
    """What a Gemini tuning job reports of its run instead of a curve, and where its curve is kept."""

    examples: int  # tuning_dataset_example_count
    steps: int  # tuning_step_count
    billable_tokens: int  # total_billable_token_count: the dataset's tokens x epochs
    experiment: str  # the Vertex AI Experiment holding the job's tuning metrics ("" before it runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "steps": self.steps,
            "billable_tokens": self.billable_tokens,
            "experiment": self.experiment,
        }


def job_stats(job: dict[str, Any]) -> JobStats | None:
    """A tuning job's `tuning_data_stats` and `experiment` (proto field names), else None."""
    stats = (job.get("tuning_data_stats") or {}).get("supervised_tuning_data_stats") or {}
    if not stats:
        return None
    try:  # int64 fields come as strings in the proto's JSON mapping
        return JobStats(
            examples=int(stats.get("tuning_dataset_example_count") or 0),
            steps=int(stats.get("tuning_step_count") or 0),
            billable_tokens=int(stats.get("total_billable_token_count") or 0),
            experiment=str(job.get("experiment") or ""),
        )
    except (TypeError, ValueError) as exc:
        name = job.get("name", "the tuning job")
        raise ValueError(f"{name}: unreadable tuning_data_stats ({exc})") from exc


def scalars_uri(job: dict[str, Any]) -> str | None:
    """The scalars file the pipeline job's tuner reported (proto field names), else None."""
    for task in (job.get("job_detail") or {}).get("task_details") or []:
        if task.get("task_name") != TUNER_TASK:
            continue
        artifacts = ((task.get("outputs") or {}).get(ARTIFACT) or {}).get("artifacts") or []
        if artifacts and artifacts[0].get("uri"):
            return f"{str(artifacts[0]['uri']).rstrip('/')}/{SCALARS}"
    return None


def parse(text: str, source: str) -> Curve:
    """The train and eval loss points of a scalars file, by step; other tags are ignored."""
    train: list[tuple[int, float]] = []
    evaluation: list[tuple[int, float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            point = json.loads(line)
            step, value, tag = int(point["step"]), float(point["value"]), str(point["tag"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{source}:{number}: not a scalar point ({exc})") from exc
        if tag == TRAIN:
            train.append((step, value))
        elif tag == EVAL:
            evaluation.append((step, value))
    return Curve(sorted(train), sorted(evaluation), source)
