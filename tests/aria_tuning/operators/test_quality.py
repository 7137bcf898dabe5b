"""The quality gate against the Vertex emulator: champion vs challenger, where no user traffic goes."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from aria_tuning.errors import EvaluationEndpointError
from aria_tuning.evaluation_log import short
from aria_tuning.hooks import VertexHook
from aria_tuning.operators.quality import QualityGateOperator
from aria_tuning.resources import resource_region

from tests.aria_tuning.conftest import Emulator, new_ti, run_direct, tuning_operator
from tests.aria_tuning.operators.test_registry_deploy import deploy, endpoint_state, register
from tests.support.chromium import page_of

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")


def gate(
    candidate: dict[str, Any], eval_uri: str, base_model: str, production: str = "no-such-endpoint", **kw: Any
) -> Any:
    operator = QualityGateOperator(
        task_id="quality_gate",
        endpoint=candidate["endpoint"],
        model_version=candidate["model_version"],
        eval_data_uri=eval_uri,
        base_model=base_model,
        production_endpoint=production,
        max_prompts=4,
        **kw,
    )
    return run_direct(operator, new_ti("quality_gate"))


def aliases(version: str) -> list[str]:
    return list(
        VertexHook().client("model", resource_region(version)).get_model(name=version).version_aliases
    )


def names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:6]
    return f"ARIA-text-{tag}", f"ARIA-ep-{tag}", f"ARIA-ep-{tag}-eval"


def production_state(endpoint: str) -> bytes:
    """The production endpoint byte for byte: deployed models, traffic split, update time."""
    state = endpoint_state(endpoint)
    return bytes(type(state).serialize(state))


@pytest.mark.parametrize(
    ("model", "eval_key"), [("text-bison@001", "palm_eval"), ("gemini-2.5-flash", "gemini_eval")]
)
def test_a_good_model_beats_the_base_model(
    vertex: str, datasets: dict[str, str], model: str, eval_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parent, _, evaluation = names()
    registered = register(run_direct(tuning_operator(datasets, model), new_ti()), parent)
    candidate = deploy(registered["model_version"], evaluation)
    capsys.readouterr()
    report = gate(candidate, datasets[eval_key], model)
    # The task log (structlog writes it to stdout here) has each prompt's primary scores, then the means.
    logged = capsys.readouterr().out
    for i, row in enumerate(report["prompts"], start=1):
        scores = row["scores"]
        line = (
            f"prompt {i}/4 (line {row['line']}): rouge_l candidate {scores['candidate']['rouge_l']:.3f}, "
            f"champion {scores['champion']['rouge_l']:.3f} | {short(row['prompt'])}"
        )
        assert line in logged, (line, logged[-3000:])
    assert "mean over 4 prompts: exact_match candidate 1.000, champion 0.000; bleu" in logged
    assert re.search(r"rule on rouge_l: candidate 1\.000 against champion 0\.\d{3} .*\. PROMOTE", logged)
    assert report["passed"] and report["count"] == 4
    assert report["champion"]["kind"] == "base model" and report["champion"]["model"] == model
    assert report["candidate"]["aggregates"] == {"exact_match": 1.0, "bleu": 1.0, "rouge_l": 1.0}
    # The base model echoes (tagged): its scores are the baseline the candidate had to beat.
    assert report["champion"]["aggregates"]["exact_match"] == 0.0
    assert report["champion"]["aggregates"]["rouge_l"] < 0.5
    row = report["prompts"][0]
    assert row["candidate"] == row["expected"] and row["champion"].startswith(f"[{model}]")
    assert row["scores"]["candidate"]["exact_match"] == 1.0
    assert "production" not in aliases(registered["model_version"])  # the gate decides, the rollout promotes


def test_a_worse_candidate_is_refused_rejected_and_production_is_untouched(
    vertex: str, datasets: dict[str, str]
) -> None:
    parent, production, evaluation = names()
    good = register(run_direct(tuning_operator(datasets), new_ti()), parent)
    deploy(good["model_version"], production, alias="production")
    before = production_state(deploy(good["model_version"], production)["endpoint"])

    bad = register(
        run_direct(tuning_operator(datasets, training_data_uri=datasets["palm_wrong"]), new_ti()), parent
    )
    candidate = deploy(bad["model_version"], evaluation)
    with pytest.raises(AirflowFailException) as refused:
        gate(candidate, datasets["palm_eval"], "text-bison@001", production)
    message = str(refused.value)
    assert (
        bad["model_version"] in message
        and "below the floor" in message
        and "worse than the champion" in message
    )
    assert "rejected" in aliases(bad["model_version"]) and "production" not in aliases(bad["model_version"])
    assert "production" in aliases(good["model_version"])
    assert production_state(deploy(good["model_version"], production)["endpoint"]) == before


def test_the_champion_is_the_version_serving_production(vertex: str, datasets: dict[str, str]) -> None:
    parent, production, evaluation = names()
    first = register(run_direct(tuning_operator(datasets), new_ti()), parent)
    deploy(first["model_version"], production, alias="production")
    second = register(run_direct(tuning_operator(datasets), new_ti()), parent)
    report = gate(
        deploy(second["model_version"], evaluation), datasets["palm_eval"], "text-bison@001", production
    )
    # Same data, same answers: not worse than the champion, so it passes the relative rule.
    assert report["passed"]
    assert report["champion"] == {
        "model": first["model_version"],
        "kind": "model version",
        "asked": deploy(first["model_version"], production)["endpoint"],
        "aggregates": report["candidate"]["aggregates"],
    }


def test_transient_endpoint_errors_are_retried(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    parent, _, evaluation = names()
    registered = register(run_direct(tuning_operator(datasets), new_ti()), parent)
    candidate = deploy(registered["model_version"], evaluation)
    endpoint_id = candidate["endpoint"].rsplit("/", 1)[1]
    emulator.fault(status=503, rate=1.0, method="POST", path=f"endpoints/{endpoint_id}:predict", count=2)
    emulator.fault(status=429, rate=1.0, method="POST", path=":evaluateInstances", count=1)
    assert gate(candidate, datasets["palm_eval"], "text-bison@001", concurrency=1)["passed"]
    assert all(rule["hits"] >= 1 for rule in emulator.fault_rules())


def test_an_endpoint_that_does_not_answer_is_an_error_not_a_score(
    vertex: str, datasets: dict[str, str], emulator: Emulator
) -> None:
    parent, _, evaluation = names()
    registered = register(run_direct(tuning_operator(datasets), new_ti()), parent)
    candidate = deploy(registered["model_version"], evaluation)
    endpoint_id = candidate["endpoint"].rsplit("/", 1)[1]
    emulator.fault(status=400, rate=1.0, method="POST", path=f"endpoints/{endpoint_id}:predict")
    with pytest.raises(EvaluationEndpointError, match="an endpoint error, not a score") as failed:
        gate(candidate, datasets["palm_eval"], "text-bison@001")
    assert candidate["endpoint"] in str(failed.value) and "prompt line 1" in str(failed.value)
    assert not {"rejected", "production"} & set(aliases(registered["model_version"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"metrics": ["exact_match", "meteor"]}, "unknown evaluation metrics"),
        ({"primary_metric": "bleu", "metrics": ["rouge_l"]}, "is not one of the metrics"),
        ({"floor": 1.5}, "within 0..1"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
def test_bad_parameters_fail_without_retry_before_any_call(
    vertex: str, datasets: dict[str, str], overrides: dict[str, Any], message: str
) -> None:
    fake = {
        "endpoint": "projects/p/locations/europe-west4/endpoints/1",
        "model_version": "projects/p/locations/europe-west4/models/1@1",
    }
    with pytest.raises(AirflowFailException, match=message):
        gate(fake, datasets["palm_eval"], "text-bison@001", **overrides)


def gate_with_report(
    datasets: dict[str, str], model: str, eval_key: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]:
    """A tuned, registered and deployed `model` through the gate with a report: (report, tuned,
    registered, the gate's task instance)."""
    parent, _, evaluation = names()
    tuned = run_direct(tuning_operator(datasets, model), new_ti())
    registered = register(tuned, parent)
    candidate = deploy(registered["model_version"], evaluation)
    prefix = f"gs://aria-datasets/components-tests/reports/{uuid.uuid4().hex[:8]}/"
    ti = new_ti("quality_gate")
    operator = QualityGateOperator(
        task_id="quality_gate",
        endpoint=candidate["endpoint"],
        model_version=registered["model_version"],
        eval_data_uri=datasets[eval_key],
        base_model=model,
        production_endpoint="no-such-endpoint",
        max_prompts=4,
        report_prefix=prefix,
        tuning_job=tuned["job"],
        tuning_method=tuned["method"],
    )
    report = run_direct(operator, ti)
    assert report["report"]["html"] == f"{prefix}report.html"
    return report, tuned, registered, ti


def rendered(report: dict[str, Any], tmp_path: Path) -> Any:
    """The published report.html opened from disk in headless Chromium (a context manager of its page)."""
    from aria_tuning.hooks.gcs import StorageHook

    page_file = tmp_path / "report.html"
    page_file.write_text(StorageHook().read_text(report["report"]["html"]), encoding="utf-8")
    return page_of(page_file)


def test_the_report_is_published_linked_recorded_and_renders(
    vertex: str, datasets: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aria_tuning.hooks.gcs import StorageHook
    from aria_tuning.hooks.models import ModelRegistryHook

    report, _, registered, ti = gate_with_report(datasets, "text-bison@001", "palm_eval")
    # The log gives the report's browser URL with nothing glued to it (the UI links up to the next space).
    logged = capsys.readouterr().out
    assert f"to open in a browser: {report['report']['url']} " in logged, logged[-2000:]
    # Linked from the task (the UI's extra link) and from the version, recorded as its evaluation.
    assert ti.xcoms["evaluation_report_url"] == report["report"]["url"]
    assert report["report"]["url"].startswith("https://storage.cloud.google.com/aria-datasets/")
    registry = ModelRegistryHook()
    version = registry.get_model(registered["model_version"])
    assert report["report"]["html"] in version.version_description
    assert dict(version.labels)["aria-evaluation"] == "promote"
    [recorded] = registry.evaluations(registered["model_version"])
    assert recorded.name == report["model_evaluation"]
    assert dict(recorded.metrics)["rougeL"] == report["candidate"]["aggregates"]["rouge_l"]
    assert dict(recorded.metadata)["reportHtml"] == report["report"]["html"]

    numbers = json.loads(StorageHook().read_text(report["report"]["json"]))
    assert numbers["candidate"]["aggregates"] == report["candidate"]["aggregates"]
    curve = numbers["tuning_curve"]
    assert len(curve["train_loss"]) == 5 and curve["eval_loss"]  # 5 train steps, eval loss reported
    with rendered(report, tmp_path) as page:
        assert page.inner_text("#decision") == "PROMOTE"
        rows = page.locator("#prompts tbody tr")
        assert rows.count() == 4 and all(rows.nth(i).is_visible() for i in range(4))
        assert report["prompts"][0]["prompt"] in rows.nth(0).inner_text()
        assert page.locator("#aggregates tbody tr").count() == 3
        for chart in ("#tuning-curve", "#scores"):
            box = page.locator(f"{chart} svg").bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100, chart
        assert page.locator("#tuning-curve svg path").count() > 2  # the drawn curves, not an empty frame
        assert "eval loss" in page.inner_text("#tuning-curve")


def test_a_gemini_report_shows_what_the_job_reports_and_where_its_curve_is(
    vertex: str, datasets: dict[str, str], tmp_path: Path
) -> None:
    from aria_tuning.catalog import TuningMethod
    from aria_tuning.hooks.gcs import StorageHook
    from aria_tuning.hooks.jobs import TuningJobHook

    report, tuned, _, _ = gate_with_report(datasets, "gemini-2.5-flash", "gemini_eval")
    job = TuningJobHook().get_job(tuned["job"], TuningMethod.TUNING_JOB)
    stats = job["tuning_data_stats"]["supervised_tuning_data_stats"]
    numbers = json.loads(StorageHook().read_text(report["report"]["json"]))
    assert numbers["tuning_curve"] is None  # the job carries none: Vertex keeps it in the Experiment
    assert numbers["tuning_data_stats"] == {
        "examples": int(stats["tuning_dataset_example_count"]),
        "steps": int(stats["tuning_step_count"]),
        "billable_tokens": int(stats["total_billable_token_count"]),
        "experiment": job["experiment"],
    }
    assert "/metadataStores/default/contexts/tuning-experiment-" in job["experiment"]
    with rendered(report, tmp_path) as page:
        section = page.locator("#tuning-curve")
        assert section.is_visible() and job["experiment"] in section.inner_text()
        cells = page.locator("#tuning-stats td")
        assert [cells.nth(i).inner_text() for i in range(cells.count())] == [
            f"{numbers['tuning_data_stats'][key]:,}" for key in ("examples", "steps", "billable_tokens")
        ]
        box = page.locator("#scores svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        rows = page.locator("#prompts tbody tr")
        assert rows.count() == 4 and all(rows.nth(i).is_visible() for i in range(4))
