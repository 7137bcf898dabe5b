"""List filters and orderings as each list call documents them, through the GAPIC REST clients.

Each resource set is created once per module in a project of its own; every case lists it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1, storage

from scripts.emulators import emulator_control
from tests.vertex_emulator.conftest import TPU_REGION, Gapic, palm_rows, pipeline_job


@dataclass
class Jobs:
    parent: str
    times: dict[str, str]  # job id -> create_time (RFC 3339), plus "<id>_end" -> end_time


@pytest.fixture(scope="module")
def jobs(gapic: Gapic, vertex_emulator: str, bucket: storage.Bucket) -> Jobs:
    """Four pipeline jobs with distinct create times, names, labels and states (held by the control
    plane: paused or failed, so no state changes while the cases run)."""
    parent = f"projects/f-{uuid.uuid4().hex[:10]}/locations/{TPU_REGION}"
    dataset = f"filters/{uuid.uuid4().hex[:8]}.jsonl"
    bucket.blob(dataset).upload_from_string("\n".join(json.dumps(row) for row in palm_rows("filters")))
    specs = {
        "aria-tune-1": ("aria-first", {"team": "nlp", "env": "prod"}),
        "aria-tune-2": ("aria-second", {"team": "nlp", "env": "dev"}),
        "other-3": ("benchmark", {"team": "infra"}),
        "aria-tune-4": ("aria fourth", {}),
    }
    for job_id, (display, labels) in specs.items():
        job = pipeline_job(f"gs://{bucket.name}/{dataset}", train_steps=100_000)
        job.display_name, job.labels = display, labels
        gapic.pipelines.create_pipeline_job(parent=parent, pipeline_job=job, pipeline_job_id=job_id)
    for job_id, outcome in (("aria-tune-1", "pause"), ("aria-tune-2", "fail"), ("other-3", "pause")):
        emulator_control(vertex_emulator, f"jobs/{parent}/pipelineJobs/{job_id}:{outcome}", {})
    emulator_control(vertex_emulator, f"jobs/{parent}/pipelineJobs/aria-tune-4:fail", {})
    listed = {job.name.rsplit("/", 1)[1]: job for job in gapic.pipelines.list_pipeline_jobs(parent=parent)}
    times = {job_id: job.create_time.rfc3339() for job_id, job in listed.items()}
    times |= {f"{job_id}_end": job.end_time.rfc3339() for job_id, job in listed.items() if job.end_time}
    return Jobs(parent, times)


def pipeline_ids(gapic: Gapic, jobs: Jobs, filter_expr: str, order_by: str = "") -> list[str]:
    request = {"parent": jobs.parent, "filter": filter_expr.format(**jobs.times), "order_by": order_by}
    return [job.name.rsplit("/", 1)[1] for job in gapic.pipelines.list_pipeline_jobs(request=request)]


ALL = ["aria-tune-1", "aria-tune-2", "other-3", "aria-tune-4"]


@pytest.mark.parametrize(
    ("filter_expr", "expected"),
    [
        ("", ALL),
        ('display_name="aria-first"', ["aria-tune-1"]),
        ('displayName!="benchmark"', ["aria-tune-1", "aria-tune-2", "aria-tune-4"]),
        ('display_name:"aria*"', ["aria-tune-1", "aria-tune-2", "aria-tune-4"]),
        ('display_name:"*second"', ["aria-tune-2"]),
        ('display_name:"*r*"', ["aria-tune-1", "aria-tune-2", "other-3", "aria-tune-4"]),
        ('display_name:"aria"', []),  # `:` without a wildcard is an exact match
        ('display_name="aria fourth"', ["aria-tune-4"]),
        ("pipeline_job_user_id=other-3", ["other-3"]),
        ('pipelineJobUserId:"aria-tune-*"', ["aria-tune-1", "aria-tune-2", "aria-tune-4"]),
        ('pipeline_name="tune-large-model"', ALL),
        ("state=PIPELINE_STATE_PAUSED", ["aria-tune-1", "other-3"]),
        ("state!=PIPELINE_STATE_PAUSED", ["aria-tune-2", "aria-tune-4"]),
        (f'template_uri="{pipeline_job("x").template_uri}"', ALL),
        ('template_uri:"https://us-kfp.pkg.dev/*"', ALL),
        ('template_metadata.version="v2.0.0"', ALL),
        ("labels.team=nlp", ["aria-tune-1", "aria-tune-2"]),
        ('labels.env="prod"', ["aria-tune-1"]),
        ("labels.env!=prod", ["aria-tune-2", "other-3", "aria-tune-4"]),
        ("labels:env", ["aria-tune-1", "aria-tune-2"]),
        ("labels.env:*", ["aria-tune-1", "aria-tune-2"]),
        ('labels.env:"d*"', ["aria-tune-2"]),
        ('create_time>"{aria-tune-2}"', ["other-3", "aria-tune-4"]),
        ('create_time>="{aria-tune-2}"', ["aria-tune-2", "other-3", "aria-tune-4"]),
        ('create_time<"{aria-tune-2}"', ["aria-tune-1"]),
        ('create_time<="{aria-tune-2}"', ["aria-tune-1", "aria-tune-2"]),
        ('create_time="{other-3}"', ["other-3"]),
        ('createTime!="{other-3}"', ["aria-tune-1", "aria-tune-2", "aria-tune-4"]),
        ('create_time>"2000-01-01T00:00:00+01:00"', ALL),
        ('update_time>"2000-01-01T00:00:00Z"', ALL),
        ('end_time>="{aria-tune-2_end}"', ["aria-tune-2", "aria-tune-4"]),
        ('end_time!="{aria-tune-2_end}"', ["aria-tune-1", "other-3", "aria-tune-4"]),
        ('labels.team=nlp OR display_name="benchmark"', ["aria-tune-1", "aria-tune-2", "other-3"]),
        ("labels.team=nlp AND state=PIPELINE_STATE_FAILED", ["aria-tune-2"]),
        ("NOT labels.team=nlp", ["other-3", "aria-tune-4"]),
        ("-labels:team", ["aria-tune-4"]),
        ("NOT (labels.team=nlp OR labels.team=infra)", ["aria-tune-4"]),
        # AIP-160: OR binds tighter than AND, so this is env=prod AND (state=FAILED OR team=infra).
        ("labels.env=prod AND state=PIPELINE_STATE_FAILED OR labels.team=infra", []),
        (
            "(labels.env=prod AND state=PIPELINE_STATE_PAUSED) OR labels.team=infra",
            ["aria-tune-1", "other-3"],
        ),
        ("labels.team=nlp state=PIPELINE_STATE_PAUSED", ["aria-tune-1"]),  # juxtaposition is AND
        ('create_time>"{aria-tune-1}" AND create_time<"{aria-tune-4}"', ["aria-tune-2", "other-3"]),
    ],
)
def test_pipeline_job_filters(gapic: Gapic, jobs: Jobs, filter_expr: str, expected: list[str]) -> None:
    assert sorted(pipeline_ids(gapic, jobs, filter_expr)) == sorted(expected)


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("", ["aria-tune-4", "other-3", "aria-tune-2", "aria-tune-1"]),  # documented default: newest first
        ("create_time", ALL),
        ("create_time desc", ["aria-tune-4", "other-3", "aria-tune-2", "aria-tune-1"]),
        ("createTime asc", ALL),
        # Jobs that have not ended have no end_time: they sort last, in the order of the next key.
        ("end_time desc, create_time", ["aria-tune-4", "aria-tune-2", "aria-tune-1", "other-3"]),
        ("end_time, create_time desc", ["aria-tune-2", "aria-tune-4", "other-3", "aria-tune-1"]),
        ("start_time, create_time", ["aria-tune-2", "aria-tune-4", "aria-tune-1", "other-3"]),
    ],
)
def test_pipeline_job_order(gapic: Gapic, jobs: Jobs, order_by: str, expected: list[str]) -> None:
    if order_by.startswith("start_time"):
        # Only jobs that started running have a start_time; which ones did depends on the pause.
        listed = {j.name.rsplit("/", 1)[1]: j for j in gapic.pipelines.list_pipeline_jobs(parent=jobs.parent)}
        started = sorted((j.start_time, i) for i, j in listed.items() if j.start_time)
        unstarted = sorted((j.create_time, i) for i, j in listed.items() if not j.start_time)
        expected = [i for _, i in started] + [i for _, i in unstarted]
    assert pipeline_ids(gapic, jobs, "", order_by) == expected


def test_filters_page_through_the_filtered_list(gapic: Gapic, jobs: Jobs) -> None:
    request = {"parent": jobs.parent, "filter": 'pipeline_job_user_id:"aria-*"', "page_size": 2}
    pages = list(gapic.pipelines.list_pipeline_jobs(request=request).pages)
    assert [len(page.pipeline_jobs) for page in pages] == [2, 1]
    assert [j.name.rsplit("/", 1)[1] for page in pages for j in page.pipeline_jobs] == [
        "aria-tune-4",
        "aria-tune-2",
        "aria-tune-1",
    ]


@pytest.mark.parametrize(
    ("filter_expr", "order_by", "named"),
    [
        ('artifact_uri="x"', "", "unsupported filter field 'artifact_uri'"),
        ('display_name<"x"', "", "unsupported operator '<' in 'display_name<\"x\"'"),
        ("state=RUNNING", "", "invalid value 'RUNNING'"),
        ('create_time>"yesterday"', "", "invalid timestamp 'yesterday'"),
        ('create_time>"2021-05-18"', "", "invalid timestamp '2021-05-18'"),
        ("aria", "", "'aria' needs an operator and a value"),
        ('display_name="a" OR', "", "at 'end of filter': expected a field name"),
        ('(display_name="a"', "", "expected ')'"),
        ('display_name="a")', "", "at ')'"),
        ("display_name=", "", "expected a value after display_name="),
        ('display_name!"x"', "", "cannot read '!\"x\"'"),
        ('display_name="unterminated', "", "cannot read '\"unterminated'"),
        ("labels=x", "", "use labels.KEY=VALUE or labels:KEY"),
        ("labels.team<x", "", "labels support =, != and :"),
        ('start_time>"2021-05-18T00:00:00Z"', "", "unsupported filter field 'start_time'"),
        ("", "display_name", "unsupported order_by field 'display_name'"),
        ("", "create_time sideways", "invalid order_by 'create_time sideways'"),
    ],
)
def test_unsupported_filters_are_400_naming_the_token(
    gapic: Gapic, jobs: Jobs, filter_expr: str, order_by: str, named: str
) -> None:
    with pytest.raises(exceptions.BadRequest, match=re.escape(named)) as raised:
        pipeline_ids(gapic, jobs, filter_expr, order_by)
    assert raised.value.response.json()["error"]["status"] == "INVALID_ARGUMENT"


# -- models and endpoints -------------------------------------------------------------------------
@dataclass
class Registry:
    parent: str
    models: dict[str, str]  # display -> model id
    endpoints: dict[str, str]  # display -> endpoint id


@pytest.fixture(scope="module")
def registry(gapic: Gapic) -> Registry:
    parent = f"projects/f-{uuid.uuid4().hex[:10]}/locations/{TPU_REGION}"
    models, endpoints = {}, {}
    for display, labels in (("ARIA-text", {"stage": "prod"}), ("aria-code", {"stage": "dev"}), ("zeta", {})):
        model = aiplatform_v1.Model(display_name=display, labels=labels, artifact_uri="gs://aria-models/x")
        uploaded = gapic.models.upload_model(parent=parent, model=model).result(timeout=10)
        models[display] = uploaded.model.rsplit("/", 1)[1]
        endpoint_id = display.lower().replace("-", "")
        gapic.endpoints.create_endpoint(
            parent=parent,
            endpoint=aiplatform_v1.Endpoint(display_name=display, labels=labels),
            endpoint_id=endpoint_id,
        ).result(timeout=10)
        endpoints[display] = endpoint_id
    return Registry(parent, models, endpoints)


CASES = [
    ("", ["ARIA-text", "aria-code", "zeta"]),
    ('display_name="ARIA-text"', ["ARIA-text"]),
    ('displayName!="ARIA-text"', ["aria-code", "zeta"]),
    ("labels.stage=prod", ["ARIA-text"]),
    ("labels:stage", ["ARIA-text", "aria-code"]),
    ("labels.stage:*", ["ARIA-text", "aria-code"]),
    ('labels.stage=prod OR display_name="zeta"', ["ARIA-text", "zeta"]),
    ("NOT labels:stage", ["zeta"]),
]


@pytest.mark.parametrize(("filter_expr", "expected"), [*CASES, ("model={ARIA-text}", ["ARIA-text"])])
def test_model_filters(gapic: Gapic, registry: Registry, filter_expr: str, expected: list[str]) -> None:
    request = {"parent": registry.parent, "filter": filter_expr.format(**registry.models)}
    assert sorted(m.display_name for m in gapic.models.list_models(request=request)) == sorted(expected)


@pytest.mark.parametrize(("filter_expr", "expected"), [*CASES, ("endpoint=zeta", ["zeta"])])
def test_endpoint_filters(gapic: Gapic, registry: Registry, filter_expr: str, expected: list[str]) -> None:
    request = {"parent": registry.parent, "filter": filter_expr}
    assert sorted(e.display_name for e in gapic.endpoints.list_endpoints(request=request)) == sorted(expected)


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("", ["ARIA-text", "aria-code", "zeta"]),
        ("display_name desc", ["zeta", "aria-code", "ARIA-text"]),
        ("create_time desc", ["zeta", "aria-code", "ARIA-text"]),
        ("update_time, display_name", ["ARIA-text", "aria-code", "zeta"]),
    ],
)
def test_model_and_endpoint_order(
    gapic: Gapic, registry: Registry, order_by: str, expected: list[str]
) -> None:
    request = {"parent": registry.parent, "order_by": order_by}
    assert [m.display_name for m in gapic.models.list_models(request=request)] == expected
    assert [e.display_name for e in gapic.endpoints.list_endpoints(request=request)] == expected


@pytest.mark.parametrize(
    ("filter_expr", "named"),
    [
        # ListModelsRequest / ListEndpointsRequest document = and != for display_name, nothing on times.
        ('display_name:"aria*"', "unsupported operator ':'"),
        ('create_time>"2021-05-18T00:00:00Z"', "unsupported filter field 'create_time'"),
        ("pipeline_job_user_id=x", "unsupported filter field 'pipeline_job_user_id'"),
    ],
)
def test_model_and_endpoint_filters_outside_their_reference_are_400(
    gapic: Gapic, registry: Registry, filter_expr: str, named: str
) -> None:
    request = {"parent": registry.parent, "filter": filter_expr}
    with pytest.raises(exceptions.BadRequest, match=re.escape(named)):
        list(gapic.models.list_models(request=request))
    with pytest.raises(exceptions.BadRequest, match=re.escape(named)):
        list(gapic.endpoints.list_endpoints(request=request))


def test_model_version_filters_and_order(gapic: Gapic, registry: Registry) -> None:
    name = f"{registry.parent}/models/{registry.models['zeta']}"
    for tag in ("b", "c"):
        model = aiplatform_v1.Model(
            display_name="zeta", labels={"tag": tag}, artifact_uri="gs://aria-models/z"
        )
        request = {"parent": registry.parent, "model": model, "parent_model": name}
        gapic.models.upload_model(request=request).result(timeout=10)

    def versions(filter_expr: str = "", order_by: str = "") -> list[str]:
        request = {"name": name, "filter": filter_expr, "order_by": order_by}
        return [v.version_id for v in gapic.models.list_model_versions(request=request)]

    assert versions() == ["1", "2", "3"]
    assert versions("labels.tag=c") == ["3"]
    assert versions("labels:tag") == ["2", "3"]
    assert versions(order_by="create_time desc") == ["3", "2", "1"]
    with pytest.raises(exceptions.BadRequest, match="unsupported filter field 'display_name'"):
        versions('display_name="zeta"')
