"""EvaluationService.EvaluateInstances: Vertex's computation-based metrics, with the published definitions.

- exact match: 1.0 when the prediction is the reference, character for character, else 0.0
  (ExactMatchSpec, evaluation_service.proto: "returns 1 if prediction and reference exactly matches").
- BLEU: sacrebleu's sentence BLEU (the Vertex SDK documents its BLEU as "based on sacrebleu
  implementation", vertexai/language_models/_evaluatable_language_models.py), default 13a tokenizer
  and exp smoothing, `use_effective_order` as the BleuSpec says, scaled from 0..100 to 0..1.
- ROUGE: Google's `rouge-score` package with the RougeSpec's `rouge_type` (rouge1..rouge9, rougeL,
  rougeLsum), `use_stemmer` and `split_summaries`, the scorer's F-measure.

Model-based metrics (pointwise, pairwise, fluency, ...) need a judge model: refused as unimplemented.
Scores are per instance, in request order, as the service returns them.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from vertex_emulator.exceptions import InvalidArgument, Unimplemented

#: Request field -> (response field, values field) of the metrics the emulator computes.
COMPUTED = {
    "exactMatchInput": ("exactMatchResults", "exactMatchMetricValues"),
    "bleuInput": ("bleuResults", "bleuMetricValues"),
    "rougeInput": ("rougeResults", "rougeMetricValues"),
}
_ROUGE_TYPE = re.compile(r"^rouge(?:[1-9]|L|Lsum)$")


def evaluate_instances(request: dict[str, Any]) -> dict[str, Any]:
    """The EvaluateInstancesResponse (wire dict) for an EvaluateInstancesRequest (wire dict)."""
    given = [key for key in request if key.endswith("Input")]
    if len(given) != 1:
        raise InvalidArgument(f"exactly one metric input is required (metric_inputs oneof), got {given}")
    field = given[0]
    if field not in COMPUTED:
        raise Unimplemented(
            f"{field}: the emulator computes only the computation-based metrics "
            f"({', '.join(sorted(COMPUTED))}); model-based metrics need a judge model"
        )
    metric_input = request[field]
    instances = metric_input.get("instances") or []
    if not instances:
        raise InvalidArgument(f"{field}.instances must not be empty")
    spec = metric_input.get("metricSpec") or {}
    pairs = [(str(i.get("prediction", "")), str(i.get("reference", ""))) for i in instances]
    if field == "exactMatchInput":
        scores = [1.0 if prediction == reference else 0.0 for prediction, reference in pairs]
    elif field == "bleuInput":
        scores = [_bleu(p, r, bool(spec.get("useEffectiveOrder"))) for p, r in pairs]
    else:
        rouge_type = _rouge_type(spec.get("rougeType") or "rougeL")
        scorer = _rouge_scorer(rouge_type, bool(spec.get("useStemmer")), bool(spec.get("splitSummaries")))
        scores = [float(scorer.score(r, p)[rouge_type].fmeasure) for p, r in pairs]
    results, values = COMPUTED[field]
    return {results: {values: [{"score": score} for score in scores]}}


def _bleu(prediction: str, reference: str, effective_order: bool) -> float:
    import sacrebleu

    score = sacrebleu.sentence_bleu(prediction, [reference], use_effective_order=effective_order)
    return float(score.score) / 100.0


def _rouge_type(value: str) -> str:
    if not _ROUGE_TYPE.match(value):
        raise InvalidArgument(
            f"rouge_spec.rouge_type {value!r} is not supported: rouge1..rouge9, rougeL or rougeLsum"
        )
    return value


@functools.cache
def _rouge_scorer(rouge_type: str, use_stemmer: bool, split_summaries: bool) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([rouge_type], use_stemmer=use_stemmer, split_summaries=split_summaries)
