"""EvaluateInstances (computation-based metrics) and model evaluations, through the official clients."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1
from google.protobuf import struct_pb2

from tests.vertex_emulator.conftest import Gapic, GrpcApi


def rest_evaluation(url: str) -> aiplatform_v1.EvaluationServiceClient:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return aiplatform_v1.EvaluationServiceClient(
        credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=url), transport="rest"
    )


@pytest.fixture(params=["rest", "grpc"])
def evaluation(request: pytest.FixtureRequest, vertex_emulator: str, grpc_target: str) -> Any:
    if request.param == "rest":
        yield rest_evaluation(vertex_emulator)
        return
    channel = grpc.insecure_channel(grpc_target)
    cls = aiplatform_v1.EvaluationServiceClient
    yield cls(transport=cls.get_transport_class("grpc")(channel=channel))
    channel.close()


LOCATION = "projects/eval-tests/locations/us-central1"
PAIRS = [("the cat sat", "the cat sat"), ("the cat sat", "the cat sat on the mat"), ("", "a dog")]


def scores(client: Any, field: str, spec: dict[str, Any]) -> list[float]:
    request = {
        "location": LOCATION,
        f"{field}_input": {
            "metric_spec": spec,
            "instances": [{"prediction": p, "reference": r} for p, r in PAIRS],
        },
    }
    response = client.evaluate_instances(request=request)
    values = getattr(getattr(response, f"{field}_results"), f"{field}_metric_values")
    return [round(v.score, 4) for v in values]


def test_exact_match_is_character_for_character(evaluation: Any) -> None:
    assert scores(evaluation, "exact_match", {}) == [1.0, 0.0, 0.0]


def test_rouge_l_is_the_f_measure_of_the_longest_common_subsequence(evaluation: Any) -> None:
    # LCS 3 of 3 predicted and 6 reference tokens: precision 1, recall 0.5, F 2/3.
    assert scores(evaluation, "rouge", {"rouge_type": "rougeL"}) == [1.0, 0.6667, 0.0]
    # Bigrams: both of the prediction's 2 among the reference's 5: precision 1, recall 0.4, F 4/7.
    assert scores(evaluation, "rouge", {"rouge_type": "rouge2"}) == [1.0, 0.5714, 0.0]


def test_bleu_is_sacrebleu_sentence_bleu_on_zero_to_one(evaluation: Any) -> None:
    import sacrebleu

    expected = round(sacrebleu.sentence_bleu("the cat sat", ["the cat sat on the mat"]).score / 100, 4)
    assert scores(evaluation, "bleu", {"use_effective_order": True}) == [1.0, expected, 0.0]
    assert 0.0 < expected < 1.0  # brevity penalty: a short prediction is not a perfect one


@pytest.mark.parametrize(
    ("request_body", "error", "message"),
    [
        (
            {
                "rouge_input": {
                    "metric_spec": {"rouge_type": "rougeX"},
                    "instances": [{"prediction": "a", "reference": "a"}],
                }
            },
            exceptions.BadRequest,
            "rougeX",
        ),
        (
            {"bleu_input": {"metric_spec": {}, "instances": []}},
            exceptions.BadRequest,
            "must not be empty",
        ),
        (
            {"fluency_input": {"metric_spec": {}, "instance": {"prediction": "a"}}},
            exceptions.MethodNotImplemented,
            "judge model",
        ),
    ],
)
def test_what_the_emulator_cannot_compute_is_refused(
    evaluation: Any, request_body: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        evaluation.evaluate_instances(request={"location": LOCATION, **request_body})


def _model(gapic: Gapic) -> str:
    parent = f"projects/eval-{uuid.uuid4().hex[:8]}/locations/us-central1"
    operation = gapic.models.upload_model(parent=parent, model={"display_name": "evaluated"})
    return f"{operation.result(timeout=30).model}@1"


def _evaluation(score: float) -> aiplatform_v1.ModelEvaluation:
    metrics = struct_pb2.Value()
    metrics.struct_value.update({"rougeL": score, "exactMatch": 0.5})
    return aiplatform_v1.ModelEvaluation(
        display_name="champion vs challenger",
        metrics_schema_uri="gs://google-cloud-aiplatform/schema/modelevaluation/general_text_generation_metrics_1.0.0.yaml",
        metrics=metrics,
    )


def test_model_evaluations_are_imported_listed_and_read_per_version(gapic: Gapic, grpc_api: GrpcApi) -> None:
    version = _model(gapic)
    first = gapic.models.import_model_evaluation(parent=version, model_evaluation=_evaluation(0.9))
    second = grpc_api.models.import_model_evaluation(parent=version, model_evaluation=_evaluation(0.95))
    assert first.name.startswith(f"{version}/evaluations/") and first.create_time
    for client in (gapic.models, grpc_api.models):
        listed = client.list_model_evaluations(parent=version).model_evaluations  # one page
        assert [e.name for e in listed] == [first.name, second.name]
        got = client.get_model_evaluation(name=second.name)
        assert dict(got.metrics)["rougeL"] == 0.95 and got.display_name == "champion vs challenger"
    # The alias `default` names the same version: the same evaluations.
    assert len(list(gapic.models.list_model_evaluations(parent=version.replace("@1", "@default")))) == 2


def test_model_evaluations_of_an_unknown_model_are_not_found(gapic: Gapic) -> None:
    with pytest.raises(exceptions.NotFound):
        gapic.models.import_model_evaluation(
            parent="projects/eval-none/locations/us-central1/models/404@1", model_evaluation=_evaluation(0.1)
        )
