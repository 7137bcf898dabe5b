"""The tuning curve of a finished run: where the job reports it, and the scalars read back.

The tune-large-model tuner names its TensorBoard scalars directory as the `tensorboard_metrics` output
artifact of its task (`jobDetail.taskDetails[].outputs`); the scalars there are JSON lines of
`{"step", "tag", "value"}` with tags `train/loss` and `eval/loss` (eval loss only when the run had an
evaluation dataset). A Gemini tuning job reports its curve in its Vertex AI Experiment (the job's
`experiment`), which is not read here. Pure functions, no Airflow and no Google import.
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
