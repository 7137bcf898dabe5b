"""The quality gate: held-out prompts to the deployed candidate, a score, then promote or roll back.

Pass: the version gets the alias `production` and all the endpoint's traffic. Fail: the candidate's
traffic goes back to the version that held `production` (or to nothing), the candidate is undeployed
(a deployed model bills node-hours even at 0% traffic; it stays in the registry for inspection), and
the task fails with QualityGateFailed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context

from aria_tuning import quality_score as qs
from aria_tuning.catalog import DataFormat, get_model
from aria_tuning.errors import ConfigurationError, QualityGateFailed, VertexError
from aria_tuning.hooks.endpoints import EndpointHook
from aria_tuning.hooks.gcs import StorageHook
from aria_tuning.hooks.models import ModelRegistryHook
from aria_tuning.hooks.prediction import PredictionHook
from aria_tuning.links import VertexEndpointLink
from aria_tuning.operators.base import VertexBaseOperator, fail_without_retry
from aria_tuning.resources import endpoint_console_url
from aria_tuning.traffic import find_deployed, split_without

_REPORT_TEXT = 500  # characters of each prompt/answer kept in the XCom report


class QualityGateOperator(VertexBaseOperator):
    """Score `model_version` on `endpoint` with up to `max_prompts` examples of `eval_data_uri`.

    Returns `{passed, score, exact_match, similarity, threshold, count, endpoint, model_version, samples}`.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "model_version",
        "eval_data_uri",
        "base_model",
        "threshold",
        "max_prompts",
        "impersonation_chain",
    )
    operator_extra_links = (VertexEndpointLink(),)

    def __init__(
        self,
        *,
        endpoint: str,
        model_version: str,
        eval_data_uri: str,
        base_model: str,
        threshold: float | str = 0.6,
        max_prompts: int | str = 20,
        production_alias: str = "production",
        max_output_tokens: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.model_version = model_version
        self.eval_data_uri = eval_data_uri
        self.base_model = base_model
        self.threshold = threshold
        self.max_prompts = max_prompts
        self.production_alias = production_alias
        self.max_output_tokens = max_output_tokens

    def _limits(self) -> tuple[float, int]:
        try:
            threshold, limit = float(str(self.threshold)), int(str(self.max_prompts))
        except ValueError as exc:
            raise ConfigurationError(
                f"threshold must be a number and max_prompts a whole number, got {self.threshold!r} "
                f"and {self.max_prompts!r}"
            ) from exc
        if not 0 <= threshold <= 1:
            raise ConfigurationError(f"threshold must be within 0..1, got {threshold}")
        if not str(self.eval_data_uri).startswith("gs://"):
            raise ConfigurationError(f"eval_data_uri must be a gs:// URI, got {self.eval_data_uri!r}")
        return threshold, limit

    def execute(self, context: Context) -> dict[str, Any]:
        try:  # bad parameters fail before any call, and a retry would fail alike
            threshold, limit = self._limits()
        except ConfigurationError as exc:
            raise fail_without_retry(exc) from exc
        data_format = get_model(self.base_model).data_format
        examples = qs.held_out_examples(self._download(), data_format, self.eval_data_uri, limit)

        endpoints = self.hook(EndpointHook)
        VertexEndpointLink.persist(context, endpoint_console_url(self.endpoint))
        endpoint = endpoints.get_endpoint(self.endpoint)
        candidate = find_deployed(endpoint, self.model_version)
        if candidate is None:
            raise VertexError(f"{self.model_version} is not deployed here", resource=self.endpoint)

        answers = [self._ask(example, data_format, candidate) for example in examples]
        result = qs.score([(e.expected, a) for e, a in zip(examples, answers, strict=True)])
        samples = [
            {"line": e.line, "prompt": e.prompt, "expected": e.expected, "answer": a}
            for e, a in zip(examples, answers, strict=True)
        ]
        for sample in samples:
            self.log.info(
                "prompt %r -> %r (expected %r)", sample["prompt"], sample["answer"], sample["expected"]
            )
        report: dict[str, Any] = {
            "passed": result.score >= threshold,
            "score": result.score,
            "exact_match": result.exact_match,
            "similarity": result.similarity,
            "threshold": threshold,
            "count": result.count,
            "endpoint": self.endpoint,
            "model_version": self.model_version,
            "samples": [
                {k: v[:_REPORT_TEXT] if isinstance(v, str) else v for k, v in s.items()} for s in samples
            ],
        }
        self.log.info(
            "Score %.3f (exact %.3f, similarity %.3f) vs threshold %.3f on %d prompts",
            result.score,
            result.exact_match,
            result.similarity,
            threshold,
            result.count,
        )

        models = self.hook(ModelRegistryHook)
        model = self.model_version.split("@", 1)[0]
        if report["passed"]:
            models.move_alias(model, self.model_version, self.production_alias)
            endpoints.set_traffic(self.endpoint, {candidate: 100})
            self.log.info(
                "%s promoted: alias %s, 100%% of %s", self.model_version, self.production_alias, self.endpoint
            )
            return report
        production = models.version_with_alias(model, self.production_alias)
        previous = find_deployed(endpoint, f"{model}@{production.version_id}") if production else None
        endpoints.set_traffic(self.endpoint, split_without(endpoint, candidate, previous))
        # Undeploy the failed candidate: a deployed model bills node-hours even at 0% traffic. The
        # operation finishes on Vertex, not on a worker.
        operation = endpoints.undeploy(self.endpoint, candidate)
        raise QualityGateFailed(
            f"{self.model_version} on {self.endpoint} scored {result.score:.3f} (exact match "
            f"{result.exact_match:.3f}, similarity {result.similarity:.3f}) on {result.count} prompts "
            f"from {self.eval_data_uri}: below the threshold {threshold:.3f}; it serves no traffic and "
            f"is being undeployed ({operation})"
        )

    def _download(self) -> str:
        try:
            return self.hook(StorageHook).read_text(str(self.eval_data_uri))
        except VertexError as exc:
            raise ConfigurationError(f"cannot read the eval split {self.eval_data_uri}: {exc}") from exc

    def _ask(self, example: qs.HeldOut, data_format: DataFormat, candidate: str) -> str:
        prediction = self.hook(PredictionHook)
        if data_format is DataFormat.PALM:
            answer, answered_by = prediction.predict_text(
                self.endpoint, example.prompt, self.max_output_tokens
            )
            # Scoring another deployed model's answers would promote the candidate on someone else's
            # merit (a canary endpoint routes most requests elsewhere): refuse instead.
            if answered_by and answered_by != candidate:
                raise VertexError(
                    f"deployed model {answered_by} answered instead of the candidate "
                    f"{candidate} ({self.model_version}); give the candidate all traffic before gating it",
                    resource=self.endpoint,
                )
            return answer
        return prediction.generate_text(
            self.endpoint, example.contents or [], example.system_instruction, self.max_output_tokens
        )
