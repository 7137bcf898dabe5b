"""The route table: every Vertex AI REST method the emulator serves, in Google's own notation.

Each route is served under /v1/ and /v1beta1/ (google-genai uses v1beta1); operations also under
/ui/, where the GAPIC REST operations client polls them. Each section names the gRPC service that
serves the same methods (`grpc_server`). Test-only controls live in `control`.
"""

from __future__ import annotations

import dataclasses

from vertex_emulator import responses as r
from vertex_emulator.routing import Route

LOC = "projects/*/locations/*"
_OPS = ("v1", "v1beta1", "ui")
_OP_PARENTS = (LOC, f"{LOC}/pipelineJobs/*", f"{LOC}/tuningJobs/*", f"{LOC}/models/*", f"{LOC}/endpoints/*")


def _service(name: str, *routes: Route) -> tuple[Route, ...]:
    """`routes` as methods of gRPC service `name` (the RPC is named after each request type)."""
    return tuple(dataclasses.replace(route, service=name) for route in routes)


ROUTES: tuple[Route, ...] = (
    *_service(
        "PipelineService",
        Route(
            "POST",
            f"{{parent={LOC}}}/pipelineJobs",
            "CreatePipelineJobRequest",
            "pipeline_job",
            r.create_pipeline_job,
        ),
        Route("GET", f"{{parent={LOC}}}/pipelineJobs", "ListPipelineJobsRequest", None, r.list_pipeline_jobs),
        Route("GET", f"{{name={LOC}/pipelineJobs/*}}", "GetPipelineJobRequest", None, r.get_pipeline_job),
        Route(
            "POST",
            f"{{name={LOC}/pipelineJobs/*}}:cancel",
            "CancelPipelineJobRequest",
            "*",
            r.cancel_pipeline_job,
        ),
        Route(
            "DELETE",
            f"{{name={LOC}/pipelineJobs/*}}",
            "DeletePipelineJobRequest",
            None,
            r.delete_pipeline_job,
        ),
    ),
    *_service(
        "GenAiTuningService",
        Route(
            "POST",
            f"{{parent={LOC}}}/tuningJobs",
            "CreateTuningJobRequest",
            "tuning_job",
            r.create_tuning_job,
        ),
        Route("GET", f"{{parent={LOC}}}/tuningJobs", "ListTuningJobsRequest", None, r.list_tuning_jobs),
        Route("GET", f"{{name={LOC}/tuningJobs/*}}", "GetTuningJobRequest", None, r.get_tuning_job),
        Route(
            "POST", f"{{name={LOC}/tuningJobs/*}}:cancel", "CancelTuningJobRequest", "*", r.cancel_tuning_job
        ),
    ),
    *_service(
        "ModelService",
        Route("POST", f"{{parent={LOC}}}/models:upload", "UploadModelRequest", "*", r.upload_model),
        Route("GET", f"{{parent={LOC}}}/models", "ListModelsRequest", None, r.list_models),
        Route("GET", f"{{name={LOC}/models/*}}", "GetModelRequest", None, r.get_model),
        Route("PATCH", f"{{model.name={LOC}/models/*}}", "UpdateModelRequest", "model", r.update_model),
        Route(
            "GET",
            f"{{name={LOC}/models/*}}:listVersions",
            "ListModelVersionsRequest",
            None,
            r.list_model_versions,
        ),
        Route(
            "POST",
            f"{{name={LOC}/models/*}}:mergeVersionAliases",
            "MergeVersionAliasesRequest",
            "*",
            r.merge_version_aliases,
        ),
        Route("DELETE", f"{{name={LOC}/models/*}}", "DeleteModelRequest", None, r.delete_model),
        Route(
            "DELETE",
            f"{{name={LOC}/models/*}}:deleteVersion",
            "DeleteModelVersionRequest",
            None,
            r.delete_model_version,
        ),
        Route(
            "POST",
            f"{{parent={LOC}/models/*}}/evaluations:import",
            "ImportModelEvaluationRequest",
            "*",
            r.import_model_evaluation,
        ),
        Route(
            "GET",
            f"{{parent={LOC}/models/*}}/evaluations",
            "ListModelEvaluationsRequest",
            None,
            r.list_model_evaluations,
        ),
        Route(
            "GET",
            f"{{name={LOC}/models/*/evaluations/*}}",
            "GetModelEvaluationRequest",
            None,
            r.get_model_evaluation,
        ),
    ),
    *_service(
        "EndpointService",
        Route("POST", f"{{parent={LOC}}}/endpoints", "CreateEndpointRequest", "endpoint", r.create_endpoint),
        Route("GET", f"{{parent={LOC}}}/endpoints", "ListEndpointsRequest", None, r.list_endpoints),
        Route("GET", f"{{name={LOC}/endpoints/*}}", "GetEndpointRequest", None, r.get_endpoint),
        Route(
            "PATCH",
            f"{{endpoint.name={LOC}/endpoints/*}}",
            "UpdateEndpointRequest",
            "endpoint",
            r.update_endpoint,
        ),
        Route("DELETE", f"{{name={LOC}/endpoints/*}}", "DeleteEndpointRequest", None, r.delete_endpoint),
        Route(
            "POST", f"{{endpoint={LOC}/endpoints/*}}:deployModel", "DeployModelRequest", "*", r.deploy_model
        ),
        Route(
            "POST",
            f"{{endpoint={LOC}/endpoints/*}}:undeployModel",
            "UndeployModelRequest",
            "*",
            r.undeploy_model,
        ),
        Route(
            "POST",
            f"{{endpoint={LOC}/endpoints/*}}:mutateDeployedModel",
            "MutateDeployedModelRequest",
            "*",
            r.mutate_deployed_model,
        ),
    ),
    *_service(
        "PredictionService",
        Route("POST", f"{{endpoint={LOC}/endpoints/*}}:predict", "PredictRequest", "*", r.predict),
        Route("POST", f"{{endpoint={LOC}/publishers/*/models/*}}:predict", "PredictRequest", "*", r.predict),
        Route(
            "POST",
            f"{{model={LOC}/endpoints/*}}:generateContent",
            "GenerateContentRequest",
            "*",
            r.generate_content,
        ),
        Route(
            "POST",
            f"{{model={LOC}/publishers/*/models/*}}:generateContent",
            "GenerateContentRequest",
            "*",
            r.generate_content,
        ),
    ),
    *_service(
        "EvaluationService",
        Route(
            "POST",
            f"{{location={LOC}}}:evaluateInstances",
            "EvaluateInstancesRequest",
            "*",
            r.evaluate_instances,
        ),
    ),
    # Cloud Monitoring (monitoring.googleapis.com), REST only: the prediction metrics Vertex exports.
    Route(
        "GET",
        "{name=projects/*}/timeSeries",
        "google.monitoring.v3.ListTimeSeriesRequest",
        None,
        r.list_time_series,
        ("v3",),
    ),
    *_service(
        "google.longrunning.Operations",
        *(
            route
            for parent in _OP_PARENTS
            for route in (
                Route(
                    "GET",
                    f"{{name={parent}}}/operations",
                    "google.longrunning.ListOperationsRequest",
                    None,
                    r.list_operations,
                    _OPS,
                ),
                Route(
                    "GET",
                    f"{{name={parent}/operations/*}}",
                    "google.longrunning.GetOperationRequest",
                    None,
                    r.get_operation,
                    _OPS,
                ),
                Route(
                    "POST",
                    f"{{name={parent}/operations/*}}:wait",
                    "google.longrunning.WaitOperationRequest",
                    "*",
                    r.wait_operation,
                    _OPS,
                ),
            )
        ),
    ),
)
