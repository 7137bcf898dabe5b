"""The quality gate: champion vs challenger on held-out prompts, before any user sees the candidate.

The candidate answers from the evaluation endpoint (it serves no users); the champion is the version
holding `production`, answering where it serves all the production traffic, or on the first run the
base model (its publisher endpoint). Both get the same held-out prompts; Vertex's Gen AI evaluation
service (`evaluateInstances`) scores each answer; `aria_tuning.promotion` decides. Pass: the report is
the task's result and the rollout may start. Fail: nothing of production changes; the candidate gets
the alias `rejected` and the task fails. An endpoint that does not answer fails the task as an
endpoint error (Airflow retries it), never as a low score.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow.sdk import Context

from aria_tuning import promotion
from aria_tuning.catalog import DataFormat, get_model
from aria_tuning.dataprep.held_out import HeldOut, held_out_examples
from aria_tuning.errors import (
    AriaTuningError,
    ConfigurationError,
    EvaluationEndpointError,
    QualityGateFailed,
    VertexError,
)
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.evaluation import EvaluationHook
from aria_tuning.hooks.gcs import StorageHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.hooks.prediction import PredictionHook
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import location_of
from aria_tuning.traffic import find_deployed

#: Characters of each prompt and answer kept in the task's XCom (the report in GCS keeps them whole).
XCOM_TEXT = 500
MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class Target:
    """Who answers: `role` (candidate or champion), the resource asked, the deployed model expected
    to answer (None for a publisher model), and what it is (a model version or a base model)."""

    role: str
    resource: str
    deployed_model_id: str | None
    model: str
    kind: str  # "model version" or "base model"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "asked": self.resource}


class QualityGateOperator(VertexBaseOperator):
    """Compare `model_version` (deployed on `endpoint`, which serves no users) with the champion.

    Returns the evaluation: `{passed, decision, rule, candidate, champion, prompts, samples, count}`.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "model_version",
        "eval_data_uri",
        "base_model",
        "production_endpoint",
        "metrics",
        "primary_metric",
        "tolerance",
        "floor",
        "max_prompts",
        "concurrency",
        "impersonation_chain",
    )

    def __init__(
        self,
        *,
        endpoint: str,
        model_version: str,
        eval_data_uri: str,
        base_model: str,
        production_endpoint: str = "ARIA-text-endpoint",
        metrics: Sequence[str] | str = promotion.DEFAULT_METRICS,
        primary_metric: str = promotion.DEFAULT_PRIMARY,
        tolerance: float | str = promotion.DEFAULT_TOLERANCE,
        floor: float | str = promotion.DEFAULT_FLOOR,
        max_prompts: int | str = 50,
        concurrency: int | str = 4,
        production_alias: str = "production",
        rejected_alias: str = "rejected",
        max_output_tokens: int = 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.model_version = model_version
        self.eval_data_uri = eval_data_uri
        self.base_model = base_model
        self.production_endpoint = production_endpoint
        self.metrics = metrics
        self.primary_metric = primary_metric
        self.tolerance = tolerance
        self.floor = floor
        self.max_prompts = max_prompts
        self.concurrency = concurrency
        self.production_alias = production_alias
        self.rejected_alias = rejected_alias
        self.max_output_tokens = max_output_tokens

    def _limits(self) -> tuple[promotion.Rule, int, int]:
        rule = promotion.rule(self.metrics, self.primary_metric, self.tolerance, self.floor)
        try:
            limit, workers = int(str(self.max_prompts)), int(str(self.concurrency))
        except ValueError as exc:
            raise ConfigurationError(
                f"max_prompts and concurrency must be whole numbers, got {self.max_prompts!r} and "
                f"{self.concurrency!r}"
            ) from exc
        if limit < 1 or not 1 <= workers <= MAX_CONCURRENCY:
            raise ConfigurationError(
                f"max_prompts must be at least 1 and concurrency 1..{MAX_CONCURRENCY}, "
                f"got {limit} and {workers}"
            )
        if not str(self.eval_data_uri).startswith("gs://"):
            raise ConfigurationError(f"eval_data_uri must be a gs:// URI, got {self.eval_data_uri!r}")
        return rule, limit, workers

    def execute(self, context: Context) -> dict[str, Any]:
        try:  # bad parameters fail before any call, and a retry would fail alike
            rule, limit, workers = self._limits()
            data_format = get_model(self.base_model).data_format
            examples = held_out_examples(self._download(), data_format, self.eval_data_uri, limit)
        except AriaTuningError as exc:
            raise fail_without_retry(exc) from exc
        location = location_of(self.model_version)
        candidate = self._candidate()
        champion = self._champion(location)
        self.log.info(
            "Candidate %s vs champion %s (%s) on %d prompts",
            candidate.model,
            champion.model,
            champion.kind,
            len(examples),
        )
        answers = {t.role: self._answers(t, examples, data_format, workers) for t in (candidate, champion)}
        scores = {
            role: {
                name: self.hook(EvaluationHook).scores(
                    location,
                    promotion.METRICS[name],
                    [(a, e.expected) for a, e in zip(said, examples, strict=True)],
                )
                for name in rule.metrics
            }
            for role, said in answers.items()
        }
        means = {
            role: {name: promotion.mean(values) for name, values in per.items()}
            for role, per in scores.items()
        }
        decision = promotion.decide(means["candidate"], means["champion"], rule)
        report = self._report(rule, decision, candidate, champion, examples, answers, scores, means)
        self.log.info("%s", _summary(report))
        if decision.passed:
            return report
        model = self.model_version.split("@", 1)[0]
        self.hook(ModelRegistryHook).move_alias(model, self.model_version, self.rejected_alias)
        context["ti"].xcom_push(key="evaluation", value=report)
        refused = QualityGateFailed(
            f"{self.model_version} refused against {champion.kind} {champion.model}: "
            f"{'; '.join(decision.reasons)} ({len(examples)} prompts of {self.eval_data_uri}). "
            f"Production is unchanged; the version has the alias {self.rejected_alias!r}"
        )
        raise fail_without_retry(refused) from refused

    def _download(self) -> str:
        try:
            return self.hook(StorageHook).read_text(str(self.eval_data_uri))
        except VertexError as exc:
            raise ConfigurationError(f"cannot read the eval split {self.eval_data_uri}: {exc}") from exc

    def _candidate(self) -> Target:
        endpoint = self.hook(EndpointHook).get_endpoint(self.endpoint)
        deployed = find_deployed(endpoint, self.model_version)
        if deployed is None or dict(endpoint.traffic_split).get(deployed) != 100:
            raise VertexError(
                f"{self.model_version} does not serve all the traffic here "
                f"(split {dict(endpoint.traffic_split)}): deploy it for evaluation first",
                resource=self.endpoint,
            )
        return Target("candidate", self.endpoint, deployed, self.model_version, "model version")

    def _champion(self, location: str) -> Target:
        """The version holding `production` where it serves all production traffic, else the base model."""
        model = self.model_version.split("@", 1)[0]
        holder = self.hook(ModelRegistryHook).version_with_alias(model, self.production_alias)
        version = f"{model}@{holder.version_id}" if holder is not None else None
        if version is None or version == self.model_version:
            publisher = f"{location}/publishers/google/models/{self.base_model}"
            return Target("champion", publisher, None, self.base_model, "base model")
        for endpoint in self.hook(EndpointHook).find_named(location, self.production_endpoint):
            deployed = find_deployed(endpoint, version)
            if deployed is not None and dict(endpoint.traffic_split).get(deployed) == 100:
                return Target("champion", str(endpoint.name), deployed, version, "model version")
        raise VertexError(
            f"the champion {version} (alias {self.production_alias}) does not serve all the traffic of "
            f"{self.production_endpoint}: finish or roll back the rollout (DAG aria_text_rollback) "
            "before evaluating a new candidate",
            resource=location,
        )

    def _answers(
        self, target: Target, examples: list[HeldOut], data_format: DataFormat, workers: int
    ) -> list[str]:
        """Every example asked of `target`, `workers` at a time (the first alone: it builds the client)."""
        first = self._ask(target, examples[0], data_format)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"aria-{target.role}") as pool:
            rest = list(pool.map(lambda e: self._ask(target, e, data_format), examples[1:]))
        return [first, *rest]

    def _ask(self, target: Target, example: HeldOut, data_format: DataFormat) -> str:
        prediction = self.hook(PredictionHook)
        try:
            if data_format is DataFormat.PALM:
                answer, answered_by = prediction.predict_text(
                    target.resource, example.prompt, self.max_output_tokens
                )
                if target.deployed_model_id and answered_by and answered_by != target.deployed_model_id:
                    raise VertexError(
                        f"deployed model {answered_by} answered instead of the {target.role}'s "
                        f"{target.deployed_model_id}",
                        resource=target.resource,
                    )
                return answer
            return prediction.generate_text(
                target.resource, example.contents or [], example.system_instruction, self.max_output_tokens
            )
        except VertexError as exc:
            raise EvaluationEndpointError(
                f"the {target.role} {target.model} did not answer held-out prompt line {example.line} "
                f"({exc}): an endpoint error, not a score; nothing was decided",
                resource=target.resource,
                transient=exc.transient,
            ) from exc

    def _report(
        self,
        rule: promotion.Rule,
        decision: promotion.Decision,
        candidate: Target,
        champion: Target,
        examples: list[HeldOut],
        answers: dict[str, list[str]],
        scores: dict[str, dict[str, list[float]]],
        means: dict[str, dict[str, float]],
    ) -> dict[str, Any]:
        def clip(text: str) -> str:
            return text if len(text) <= XCOM_TEXT else text[: XCOM_TEXT - 1] + "…"

        prompts = [
            {
                "line": example.line,
                "prompt": clip(example.prompt),
                "expected": clip(example.expected),
                "candidate": clip(answers["candidate"][i]),
                "champion": clip(answers["champion"][i]),
                "scores": {role: {name: scores[role][name][i] for name in rule.metrics} for role in scores},
            }
            for i, example in enumerate(examples)
        ]
        return {
            "passed": decision.passed,
            "decision": {
                "passed": decision.passed,
                "primary": rule.primary,
                "candidate": decision.candidate,
                "champion": decision.champion,
                "reasons": list(decision.reasons),
            },
            "rule": rule.to_dict(),
            "candidate": {**candidate.to_dict(), "aggregates": means["candidate"]},
            "champion": {**champion.to_dict(), "aggregates": means["champion"]},
            "count": len(examples),
            "eval_data_uri": self.eval_data_uri,
            "model_version": self.model_version,
            "prompts": prompts,
            # The candidate's answers as the earlier gate reported them (tests and the fault suite read them).
            "samples": [
                {"line": p["line"], "prompt": p["prompt"], "answer": p["candidate"]} for p in prompts
            ],
        }


def _summary(report: dict[str, Any]) -> str:
    decision, rule = report["decision"], report["rule"]
    rows = [
        f"{name}: candidate {report['candidate']['aggregates'][name]:.3f}, "
        f"champion {report['champion']['aggregates'][name]:.3f}"
        for name in rule["metrics"]
    ]
    verdict = "PROMOTE" if decision["passed"] else "REFUSE: " + "; ".join(decision["reasons"])
    return (
        f"{'; '.join(rows)}. Rule: {rule['primary']} >= champion - {rule['tolerance']} and >= "
        f"{rule['floor']}. {verdict}"
    )
