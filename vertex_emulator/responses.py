"""HTTP in, JSON out: one handler per Vertex REST method.

Each handler gets the backend and the request as a validated camelCase dict (see `wire`) and
returns a `Reply`: the response message type and its wire dict. Handlers hold no logic of their
own beyond picking request fields; `error_body` is the one adapter from errors to the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vertex_emulator import evaluation
from vertex_emulator.backend import Backend
from vertex_emulator.exceptions import EmulatorError
from vertex_emulator.names import paginate

OPERATION = "google.longrunning.Operation"
EMPTY = "google.protobuf.Empty"


@dataclass(frozen=True)
class Reply:
    type_name: str
    body: dict[str, Any]


def error_body(error: EmulatorError) -> tuple[int, dict[str, Any]]:
    """Google's error envelope and HTTP status for any emulator error."""
    return error.http_status, error.to_envelope()


def _page(req: dict[str, Any], items: list[dict[str, Any]], key: str, type_name: str) -> Reply:
    page, token = paginate(items, int(req.get("pageSize", 0)), req.get("pageToken", ""))
    body: dict[str, Any] = {key: page}
    if token:
        body["nextPageToken"] = token
    return Reply(type_name, body)


def _mask(req: dict[str, Any]) -> list[str]:
    """`updateMask` (a FieldMask, comma-separated on the wire) as a list of paths."""
    return [path for path in str(req.get("updateMask", "")).split(",") if path]


# -- PipelineService ------------------------------------------------------------------------
def create_pipeline_job(backend: Backend, req: dict[str, Any]) -> Reply:
    job = backend.pipelines.create(req["parent"], req.get("pipelineJob", {}), req.get("pipelineJobId", ""))
    return Reply("PipelineJob", job)


def get_pipeline_job(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("PipelineJob", backend.pipelines.get(req["name"]))


def list_pipeline_jobs(backend: Backend, req: dict[str, Any]) -> Reply:
    jobs = backend.pipelines.find_jobs(req["parent"], req.get("filter", ""), req.get("orderBy", ""))
    return _page(req, jobs, "pipelineJobs", "ListPipelineJobsResponse")


def cancel_pipeline_job(backend: Backend, req: dict[str, Any]) -> Reply:
    backend.pipelines.cancel(req["name"])
    return Reply(EMPTY, {})


def delete_pipeline_job(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply(OPERATION, backend.pipelines.delete(req["name"]))


# -- GenAiTuningService ---------------------------------------------------------------------
def create_tuning_job(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("TuningJob", backend.tuning.create(req["parent"], req.get("tuningJob", {})))


def get_tuning_job(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("TuningJob", backend.tuning.get(req["name"]))


def list_tuning_jobs(backend: Backend, req: dict[str, Any]) -> Reply:
    jobs = backend.tuning.find(req["parent"], req.get("filter", ""), newest_first=True)  # as Vertex lists
    return _page(req, jobs, "tuningJobs", "ListTuningJobsResponse")


def cancel_tuning_job(backend: Backend, req: dict[str, Any]) -> Reply:
    backend.tuning.cancel(req["name"])
    return Reply(EMPTY, {})


# -- ModelService ---------------------------------------------------------------------------
def upload_model(backend: Backend, req: dict[str, Any]) -> Reply:
    operation = backend.models.upload_operation(
        req["parent"], req.get("model", {}), req.get("parentModel", ""), req.get("modelId", "")
    )
    return Reply(OPERATION, operation)


def get_model(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("Model", backend.models.get(req["name"]))


def list_models(backend: Backend, req: dict[str, Any]) -> Reply:
    models = backend.models.find(req["parent"], req.get("filter", ""), req.get("orderBy", ""))
    return _page(req, models, "models", "ListModelsResponse")


def list_model_versions(backend: Backend, req: dict[str, Any]) -> Reply:
    versions = backend.models.list_versions(req["name"], req.get("filter", ""), req.get("orderBy", ""))
    return _page(req, versions, "models", "ListModelVersionsResponse")


def update_model(backend: Backend, req: dict[str, Any]) -> Reply:
    model = req.get("model", {})
    return Reply("Model", backend.models.update(model.get("name", ""), model, _mask(req)))


def merge_version_aliases(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("Model", backend.models.merge_version_aliases(req["name"], req.get("versionAliases", [])))


def delete_model(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply(OPERATION, backend.models.delete(req["name"]))


def delete_model_version(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply(OPERATION, backend.models.delete_version(req["name"]))


def import_model_evaluation(backend: Backend, req: dict[str, Any]) -> Reply:
    evaluation = backend.model_evaluations.import_evaluation(req["parent"], req.get("modelEvaluation", {}))
    return Reply("ModelEvaluation", evaluation)


def get_model_evaluation(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("ModelEvaluation", backend.model_evaluations.get(req["name"]))


def list_model_evaluations(backend: Backend, req: dict[str, Any]) -> Reply:
    evaluations = backend.model_evaluations.list(req["parent"])
    return _page(req, evaluations, "modelEvaluations", "ListModelEvaluationsResponse")


# -- EndpointService ------------------------------------------------------------------------
def create_endpoint(backend: Backend, req: dict[str, Any]) -> Reply:
    operation = backend.endpoints.create(req["parent"], req.get("endpoint", {}), req.get("endpointId", ""))
    return Reply(OPERATION, operation)


def get_endpoint(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("Endpoint", backend.endpoints.get(req["name"]))


def list_endpoints(backend: Backend, req: dict[str, Any]) -> Reply:
    endpoints = backend.endpoints.find(req["parent"], req.get("filter", ""), req.get("orderBy", ""))
    return _page(req, endpoints, "endpoints", "ListEndpointsResponse")


def update_endpoint(backend: Backend, req: dict[str, Any]) -> Reply:
    endpoint = req.get("endpoint", {})
    return Reply("Endpoint", backend.endpoints.update(endpoint.get("name", ""), endpoint, _mask(req)))


def delete_endpoint(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply(OPERATION, backend.endpoints.delete(req["name"]))


def deploy_model(backend: Backend, req: dict[str, Any]) -> Reply:
    operation = backend.endpoints.deploy(
        req["endpoint"], req.get("deployedModel", {}), req.get("trafficSplit", {})
    )
    return Reply(OPERATION, operation)


def undeploy_model(backend: Backend, req: dict[str, Any]) -> Reply:
    operation = backend.endpoints.undeploy(
        req["endpoint"], req.get("deployedModelId", ""), req.get("trafficSplit", {})
    )
    return Reply(OPERATION, operation)


def mutate_deployed_model(backend: Backend, req: dict[str, Any]) -> Reply:
    operation = backend.endpoints.mutate(req["endpoint"], req.get("deployedModel", {}), _mask(req))
    return Reply(OPERATION, operation)


# -- PredictionService ----------------------------------------------------------------------
def predict(backend: Backend, req: dict[str, Any]) -> Reply:
    prediction = backend.serving.predict(req["endpoint"], req.get("instances", []), req.get("parameters"))
    return Reply("PredictResponse", prediction)


def generate_content(backend: Backend, req: dict[str, Any]) -> Reply:
    response = backend.serving.generate_content(
        req["model"], req.get("contents", []), req.get("generationConfig")
    )
    return Reply("GenerateContentResponse", response)


# -- EvaluationService ----------------------------------------------------------------------
def evaluate_instances(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("EvaluateInstancesResponse", evaluation.evaluate_instances(req))


# -- Cloud Monitoring -----------------------------------------------------------------------
def list_time_series(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply("google.monitoring.v3.ListTimeSeriesResponse", backend.monitoring.list_time_series(req))


# -- Operations -----------------------------------------------------------------------------
def get_operation(backend: Backend, req: dict[str, Any]) -> Reply:
    return Reply(OPERATION, backend.operations.get(req["name"]))


def list_operations(backend: Backend, req: dict[str, Any]) -> Reply:
    operations = backend.operations.list(req["name"], req.get("filter", ""))
    return _page(req, operations, "operations", "google.longrunning.ListOperationsResponse")


def wait_operation(backend: Backend, req: dict[str, Any]) -> Reply:
    timeout = req.get("timeout", "")
    seconds = float(timeout.rstrip("s")) if isinstance(timeout, str) and timeout else 0.0
    return Reply(OPERATION, backend.operations.wait(req["name"], seconds))
