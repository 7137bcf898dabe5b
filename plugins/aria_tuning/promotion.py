"""The promotion rule: which metrics, and when a candidate may replace the champion.

Metrics are Vertex's computation-based ones (Gen AI evaluation service, `evaluateInstances`); each
name maps to the request's metric input and spec, and to the response's values. The rule is
relative with a floor: promote only if the candidate's mean on the primary metric is at least the
champion's minus `tolerance`, and at least `floor`. Pure functions, no Airflow and no Google import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aria_tuning.errors import ConfigurationError


@dataclass(frozen=True)
class Metric:
    """One metric of `EvaluateInstancesRequest`: its input field, spec, and response fields."""

    name: str
    input_field: str  # e.g. "rouge_input"
    spec: Mapping[str, Any]
    results_field: str  # e.g. "rouge_results"
    values_field: str  # e.g. "rouge_metric_values"
    title: str


def _rouge(name: str, rouge_type: str, title: str, **spec: Any) -> Metric:
    return Metric(
        name, "rouge_input", {"rouge_type": rouge_type, **spec}, "rouge_results", "rouge_metric_values", title
    )


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "exact_match",
            "exact_match_input",
            {},
            "exact_match_results",
            "exact_match_metric_values",
            "Exact match",
        ),
        # Effective order: sentence-level BLEU of a short answer without a 4-gram match is 0 otherwise.
        Metric(
            "bleu", "bleu_input", {"use_effective_order": True}, "bleu_results", "bleu_metric_values", "BLEU"
        ),
        _rouge("rouge_1", "rouge1", "ROUGE-1"),
        _rouge("rouge_2", "rouge2", "ROUGE-2"),
        _rouge("rouge_l", "rougeL", "ROUGE-L"),
        _rouge("rouge_l_sum", "rougeLsum", "ROUGE-Lsum", split_summaries=True),
    )
}
DEFAULT_METRICS = ("exact_match", "bleu", "rouge_l")
DEFAULT_PRIMARY = "rouge_l"
#: In the demo a model that answered 5 of 19 held-out prompts with the reply to another request (and
#: greeted the wrong customer in the rest) scored ROUGE-L 0.77; a model tuned on the same data that
#: answers each request scores about 0.97. 0.85 refuses the first and passes the second.
DEFAULT_FLOOR = 0.85
#: How much worse than the champion the candidate may be on the primary metric (noise of a few prompts).
DEFAULT_TOLERANCE = 0.02


@dataclass(frozen=True)
class Rule:
    metrics: tuple[str, ...]
    primary: str
    tolerance: float
    floor: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": list(self.metrics),
            "primary": self.primary,
            "tolerance": self.tolerance,
            "floor": self.floor,
        }


def rule(metrics: object, primary: object, tolerance: object, floor: object) -> Rule:
    """The rule from DAG params (rendered strings or values); ConfigurationError names what is wrong."""
    names = _names(metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ConfigurationError(f"unknown evaluation metrics {unknown}; known: {sorted(METRICS)}")
    primary_name = str(primary)
    if primary_name not in names:
        raise ConfigurationError(f"primary metric {primary_name!r} is not one of the metrics {list(names)}")
    try:
        tolerance_value, floor_value = float(str(tolerance)), float(str(floor))
    except ValueError as exc:
        raise ConfigurationError(
            f"tolerance and floor must be numbers, got {tolerance!r}, {floor!r}"
        ) from exc
    if not 0 <= tolerance_value <= 1 or not 0 <= floor_value <= 1:
        raise ConfigurationError(
            f"tolerance and floor must be within 0..1, got {tolerance_value} and {floor_value}"
        )
    return Rule(names, primary_name, tolerance_value, floor_value)


def _names(metrics: object) -> tuple[str, ...]:
    if isinstance(metrics, str):
        items = [m.strip() for m in metrics.strip("[]").replace("'", "").replace('"', "").split(",")]
    elif isinstance(metrics, Sequence):
        items = [str(m).strip() for m in metrics]
    else:
        raise ConfigurationError(f"metrics must be a list of metric names, got {metrics!r}")
    names = tuple(dict.fromkeys(m for m in items if m))
    if not names:
        raise ConfigurationError("at least one evaluation metric is required")
    return names


def mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


@dataclass(frozen=True)
class Decision:
    passed: bool
    candidate: float  # the candidate's mean on the primary metric
    champion: float
    reasons: tuple[str, ...]  # why it was refused (empty when it passed)


def decide(candidate: Mapping[str, float], champion: Mapping[str, float], the_rule: Rule) -> Decision:
    """Promote iff the candidate clears the floor and is not worse than the champion beyond tolerance."""
    primary = the_rule.primary
    mine, theirs = candidate[primary], champion[primary]
    reasons = []
    if mine < the_rule.floor:
        reasons.append(f"{primary} {mine:.3f} is below the floor {the_rule.floor:.3f}")
    if mine < theirs - the_rule.tolerance:
        reasons.append(
            f"{primary} {mine:.3f} is worse than the champion's {theirs:.3f} by more than the "
            f"tolerance {the_rule.tolerance:.3f}"
        )
    return Decision(not reasons, mine, theirs, tuple(reasons))
