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

from aria_tuning import promotion, training_curve
from aria_tuning.catalog import DataFormat, TuningMethod, get_model
from aria_tuning.dataprep.held_out import HeldOut, held_out_examples
from aria_tuning.errors import (
    AriaTuningError,
    ConfigurationError,
    EvaluationEndpointError,
    QualityGateFailed,
    VertexError,
)
from aria_tuning.evaluation_log import log_lines
from aria_tuning.evaluation_report import model_evaluation, report_html, report_json
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.evaluation import EvaluationHook
from aria_tuning.hooks.gcs import StorageHook
from aria_tuning.hooks.jobs import TuningJobHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.hooks.prediction import PredictionHook
from aria_tuning.links import EvaluationReportLink
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import gcs_browser_url, label_value, location_of
from aria_tuning.traffic import find_deployed

#: Characters of each prompt and answer kept in the task's XCom (the report in GCS keeps them whole).
XCOM_TEXT = 500
MAX_CONCURRENCY = 16
#: The Model Registry's schema for text-generation evaluation metrics (what the console's Evaluate tab reads).
METRICS_SCHEMA = (
    "gs://google-cloud-aiplatform/schema/modelevaluation/general_text_generation_metrics_1.0.0.yaml"
)
#: Version label recording the gate's decision (label values cannot hold the report's URI).
LABEL_EVALUATION = "aria-evaluation"


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

    Returns the evaluation: `{passed, decision, rule, candidate, champion, prompts, samples, count,
    report, model_evaluation}`. The report (HTML and JSON, with the tuning curve of `tuning_job`) goes
    to `report_prefix` in GCS, is linked from the task and the version, and is recorded as the version's
    ModelEvaluation.
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
        "report_prefix",
        "tuning_job",
        "tuning_method",
        "impersonation_chain",
    )
    operator_extra_links = (EvaluationReportLink(),)

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
        report_prefix: str | None = None,
        tuning_job: str | None = None,
        tuning_method: str | None = None,
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
        self.report_prefix = report_prefix
        self.tuning_job = tuning_job
        self.tuning_method = tuning_method
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
        facts = (rule, decision, candidate, champion, examples, answers, scores, means)
        report = self._report(*facts, clip_at=XCOM_TEXT)
        for line in log_lines(report):  # each prompt's score, the means, the rule: what a person reads
            self.log.info("%s", line)
        report = {**report, **self._publish(context, self._report(*facts, clip_at=None))}
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
        clip_at: int | None,
    ) -> dict[str, Any]:
        def clip(text: str) -> str:
            return text if clip_at is None or len(text) <= clip_at else text[: clip_at - 1] + "…"

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

    def _tuning_run(self) -> tuple[training_curve.Curve | None, training_curve.JobStats | None]:
        """What the tuning run reports of itself: the pipeline's loss curve, or a Gemini job's data stats
        (its curve stays in its Vertex AI Experiment); (None, None), logged, when there is nothing to read."""
        if not self.tuning_job or not self.tuning_method or str(self.tuning_job) == "None":
            return None, None
        try:
            job = self.hook(TuningJobHook).get_job(
                str(self.tuning_job), TuningMethod(str(self.tuning_method))
            )
            stats = training_curve.job_stats(job)
            if stats is not None:
                self.log.info(
                    "%s keeps its loss curve in its Vertex AI Experiment %s, which the gate does not read; "
                    "the report shows the job's tuning data stats",
                    self.tuning_job,
                    stats.experiment or "(not named)",
                )
                return None, stats
            uri = training_curve.scalars_uri(job)
            if uri is None:
                self.log.info("%s reports no loss curve the gate can read", self.tuning_job)
                return None, None
            return training_curve.parse(self.hook(StorageHook).read_text(uri), uri), None
        except (VertexError, ValueError) as exc:  # evidence, not the decision: the report says it is missing
            self.log.warning("The report has no tuning curve: %s", exc)
            return None, None

    def _publish(self, context: Context, report: dict[str, Any]) -> dict[str, Any]:
        """Write the report next to the prepared data, link it, record it as the version's evaluation."""
        if not self.report_prefix:
            return {}
        prefix = str(self.report_prefix).rstrip("/")
        html_uri, json_uri = f"{prefix}/report.html", f"{prefix}/report.json"
        curve, stats = self._tuning_run()
        storage = self.hook(StorageHook)
        storage.write_text(json_uri, report_json(report, curve, stats), "application/json")
        storage.write_text(html_uri, report_html(report, curve, stats), "text/html; charset=utf-8")
        EvaluationReportLink.persist(context, gcs_browser_url(html_uri))
        # The URL ends the line: the Airflow UI links a URL up to the next space, so "(URL)" broke the link.
        self.log.info("Evaluation report %s, to open in a browser: %s", html_uri, gcs_browser_url(html_uri))
        registry = self.hook(ModelRegistryHook)
        verdict = "promote" if report["passed"] else "refuse"
        name = registry.import_evaluation(
            self.model_version, model_evaluation(report, verdict, html_uri, json_uri)
        )
        registry.merge_version_labels(self.model_version, {LABEL_EVALUATION: label_value(verdict)})
        description = str(registry.get_model(self.model_version).version_description or "")
        if html_uri not in description:
            registry.describe_version(
                self.model_version, f"{description} Evaluation report: {html_uri}".strip()
            )
        return {
            "report": {"html": html_uri, "json": json_uri, "url": gcs_browser_url(html_uri)},
            "model_evaluation": name,
        }
