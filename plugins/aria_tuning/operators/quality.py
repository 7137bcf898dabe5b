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
from aria_tuning import vertex_jobs as vj
from aria_tuning.catalog import DataFormat, get_model
from aria_tuning.errors import ConfigurationError, QualityGateFailed, VertexError
from aria_tuning.hooks import vertex_call
from aria_tuning.links import VertexEndpointLink
from aria_tuning.operators.base import VertexBaseOperator
from aria_tuning.operators.deploy import find_deployed, scaled_split
from aria_tuning.operators.registry import move_alias, version_with_alias

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

    def execute(self, context: Context) -> dict[str, Any]:
        threshold, limit = float(str(self.threshold)), int(str(self.max_prompts))
        if not 0 <= threshold <= 1:
            raise ConfigurationError(f"threshold must be within 0..1, got {threshold}")
        if not str(self.eval_data_uri).startswith("gs://"):
            raise ConfigurationError(f"eval_data_uri must be a gs:// URI, got {self.eval_data_uri!r}")
        data_format = get_model(self.base_model).data_format
        examples = qs.held_out_examples(self._download(), data_format, self.eval_data_uri, limit)

        region = vj.resource_region(self.endpoint)
        endpoints = self.hook.client("endpoint", region)
        VertexEndpointLink.persist(context, vj.endpoint_console_url(self.endpoint))
        endpoint = vertex_call(
            self.endpoint, "reading the endpoint", lambda: endpoints.get_endpoint(name=self.endpoint)
        )
        candidate = find_deployed(endpoint, self.model_version)
        if candidate is None:
            raise VertexError(f"{self.model_version} is not deployed here", resource=self.endpoint)

        predictions = self.hook.client("prediction", region)
        answers = [self._ask(predictions, example, data_format, candidate) for example in examples]
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

        models = self.hook.client("model", region)
        model = self.model_version.split("@", 1)[0]
        if report["passed"]:
            move_alias(models, model, self.model_version, self.production_alias)
            self._set_traffic(endpoints, {candidate: 100})
            self.log.info(
                "%s promoted: alias %s, 100%% of %s", self.model_version, self.production_alias, self.endpoint
            )
            return report
        self._set_traffic(endpoints, self._fallback_split(models, model, endpoint, candidate))
        operation = self._undeploy(endpoints, candidate)
        raise QualityGateFailed(
            f"{self.model_version} on {self.endpoint} scored {result.score:.3f} (exact match "
            f"{result.exact_match:.3f}, similarity {result.similarity:.3f}) on {result.count} prompts "
            f"from {self.eval_data_uri}: below the threshold {threshold:.3f}; it serves no traffic and "
            f"is being undeployed ({operation})"
        )

    def _download(self) -> str:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        bucket, _, blob = str(self.eval_data_uri)[len("gs://") :].partition("/")
        gcs = GCSHook(gcp_conn_id=self.gcp_conn_id, impersonation_chain=self.impersonation_chain)
        try:
            return gcs.download(bucket_name=bucket, object_name=blob).decode("utf-8")
        except Exception as exc:
            raise ConfigurationError(f"cannot read the eval split {self.eval_data_uri}: {exc}") from exc

    def _ask(self, client: Any, example: qs.HeldOut, data_format: DataFormat, candidate: str) -> str:
        if data_format is DataFormat.PALM:
            response = vertex_call(
                self.endpoint,
                "predict",
                lambda: client.predict(
                    endpoint=self.endpoint,
                    instances=[{"prompt": example.prompt}],
                    parameters={"temperature": 0.0, "maxOutputTokens": self.max_output_tokens},
                ),
            )
            # Scoring another deployed model's answers would promote the candidate on someone else's
            # merit (a canary endpoint routes most requests elsewhere): refuse instead.
            if response.deployed_model_id and response.deployed_model_id != candidate:
                raise VertexError(
                    f"deployed model {response.deployed_model_id} answered instead of the candidate "
                    f"{candidate} ({self.model_version}); give the candidate all traffic before gating it",
                    resource=self.endpoint,
                )
            prediction = dict(response.predictions[0]) if response.predictions else {}
            return str(prediction.get("content", ""))
        request: dict[str, Any] = {
            "model": self.endpoint,
            "contents": example.contents,
            "generation_config": {"temperature": 0.0, "max_output_tokens": self.max_output_tokens},
        }
        if example.system_instruction:
            request["system_instruction"] = example.system_instruction
        response = vertex_call(
            self.endpoint, "generateContent", lambda: client.generate_content(request=request)
        )
        if not response.candidates:
            return ""
        return "".join(part.text for part in response.candidates[0].content.parts)

    def _fallback_split(self, models: Any, model: str, endpoint: Any, candidate: str) -> dict[str, int]:
        """Traffic without the candidate: all to the deployed production version, else to the others."""
        production = version_with_alias(models, model, self.production_alias)
        previous = find_deployed(endpoint, f"{model}@{production.version_id}") if production else None
        if previous and previous != candidate:
            return {previous: 100}
        others = {k: v for k, v in dict(endpoint.traffic_split).items() if k != candidate and v > 0}
        return scaled_split(others, 100) if others else {}

    def _undeploy(self, client: Any, deployed_id: str) -> str:
        """Start undeploying the failed candidate; the operation finishes on Vertex, not on a worker."""
        operation = vertex_call(
            self.endpoint,
            f"undeploying the failed candidate {deployed_id}",
            lambda: client.undeploy_model(endpoint=self.endpoint, deployed_model_id=deployed_id),
            retry=False,
        )
        self.log.info("Undeploying the failed candidate %s from %s", deployed_id, self.endpoint)
        return str(operation.operation.name)

    def _set_traffic(self, client: Any, split: dict[str, int]) -> None:
        vertex_call(
            self.endpoint,
            f"setting traffic split {split}",
            lambda: client.update_endpoint(
                endpoint={"name": self.endpoint, "traffic_split": split},
                update_mask={"paths": ["traffic_split"]},
            ),
        )
        self.log.info("%s traffic split is now %s", self.endpoint, split or "{} (serves nothing)")
