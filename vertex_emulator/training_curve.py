"""The training curve a tune-large-model run reports: loss per step, eval loss every `evaluation_interval`.

The real tuner writes TensorBoard scalars under the pipeline root and names that directory as its
`tensorboard_metrics` output artifact; the emulator writes the same scalars as JSON lines
(`{"step", "tag", "value", "wall_time"}`, tags `train/loss` and `eval/loss`) to
`{pipeline root}/{job id}/large-language-model-tuner/tensorboard_metrics/scalars.jsonl`.

Deterministic and plausible: an exponential decay from about 2.6 towards a floor that falls with the
dataset's size, a little noise seeded by the job, and eval loss a little above train loss, reported
only when the run has an evaluation dataset.
"""

from __future__ import annotations

import hashlib
import json
import math
import random

SCALARS = "scalars.jsonl"


def curve(
    job_id: str, steps: int, examples: int, eval_interval: int, with_eval: bool
) -> list[dict[str, object]]:
    """The scalars of a run of `steps` steps on `examples` training examples."""
    steps = max(1, steps)
    rng = random.Random(int(hashlib.sha256(job_id.encode()).hexdigest()[:16], 16))
    start, floor = 2.6, 0.25 + 0.9 / math.sqrt(max(examples, 1) / 10)
    points: list[dict[str, object]] = []
    for step in range(1, steps + 1):
        decay = math.exp(-4.0 * step / steps)
        loss = floor + (start - floor) * decay + rng.uniform(-0.04, 0.04) * (0.3 + decay)
        points.append({"step": step, "tag": "train/loss", "value": round(loss, 4), "wall_time": float(step)})
        if with_eval and (step % max(1, eval_interval) == 0 or step == steps):
            gap = 0.08 + 0.1 * decay
            points.append(
                {"step": step, "tag": "eval/loss", "value": round(loss + gap, 4), "wall_time": float(step)}
            )
    return points


def jsonl(points: list[dict[str, object]]) -> str:
    return "".join(json.dumps(point) + "\n" for point in points)
