"""Vertex AI's Gen AI evaluation service: `evaluateInstances` for the computation-based metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aria_tuning.errors import VertexError
from aria_tuning.hooks.base import VertexHook, translated
from aria_tuning.promotion import Metric
from aria_tuning.resources import resource_region

#: Instances per request: keeps one request small whatever the number of prompts.
BATCH = 100


class EvaluationHook(VertexHook):
    """Scores (prediction, reference) pairs; retried on 429/5xx, as computing a metric changes nothing."""

    def scores(self, location: str, metric: Metric, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The per-instance scores of `metric` for `pairs`, in order."""
        client = self.client("evaluation", resource_region(location))
        scores: list[float] = []
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            request: dict[str, Any] = {
                "location": location,
                metric.input_field: {
                    "metric_spec": dict(metric.spec),
                    "instances": [{"prediction": p, "reference": r} for p, r in batch],
                },
            }
            with translated(location, f"evaluateInstances ({metric.name})"):
                response = client.evaluate_instances(request=request, retry=self.retry())
            values = list(getattr(getattr(response, metric.results_field), metric.values_field))
            if len(values) != len(batch):
                raise VertexError(
                    f"evaluateInstances ({metric.name}) returned {len(values)} scores for {len(batch)} "
                    "instances",
                    resource=location,
                )
            scores += [float(value.score) for value in values]
        return scores
