"""Promotion you can trust, end to end through `dag.test()`: evaluate, canary, refuse, roll back.

One parent model and one production endpoint of its own go through four steps in order: a first
run promoted against the base model, a second (better data) promoted against the first, a third
whose model is degraded and refused with production left byte for byte as it was, and a rollback.
After each, the emulator holds exactly what the run keeps: one more version of one parent model,
and no endpoint of the run's serving anything but the production endpoint.

The steps build on each other, and the tests run in any order (`make test-random`): a test asks for
its step (`Story.step`), which runs the steps before it first, each once, and keeps what the emulator
held right after it; the tests check those snapshots, never the emulator as later steps left it.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scripts.demo import run_dag
from scripts.emulators import emulator_control, start_vertex_emulator
from scripts.sample_data import create_buckets, upload_version
from tests.dags.conftest import FAST, parse_dags
from tests.support import airflow as airflow_support
from tests.support.emulator_settings import EmulatorSettings

LOCATION = "projects/aria-local/locations/europe-west4"


@dataclass
class Story:
    """The DAGs, the emulator, and what the runs so far left: names, versions, endpoint bytes."""

    tuning: Any
    rollback: Any
    vertex: str
    model_name: str = field(default_factory=lambda: f"ARIA-text-promo-{uuid.uuid4().hex[:6]}")
    endpoint_name: str = field(default_factory=lambda: f"ARIA-ep-promo-{uuid.uuid4().hex[:6]}")
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)

    def step(self, key: str) -> dict[str, Any]:
        """What step `key` of STEPS left, running it (and the steps before it) the first time; a step
        that raised raises again for every test that needs it, without running twice."""
        order = list(STEPS)
        for earlier in order[: order.index(key) + 1]:
            if earlier in self.failed:
                raise RuntimeError(f"step {earlier!r} of the promotion story failed") from self.failed[
                    earlier
                ]
            if earlier not in self.runs:
                try:
                    STEPS[earlier](self)
                except BaseException as exc:
                    self.failed[earlier] = exc
                    raise
        return self.runs[key]

    def conf(self, **overrides: Any) -> dict[str, Any]:
        return {
            "base_model": "text-bison@001",
            "dry_run": False,
            "dataset_uri": None,
            "tuned_model_name": self.model_name,
            "endpoint_name": self.endpoint_name,
            "traffic_percentage": 10,
            **overrides,
        }

    def get(self, path: str, **query: str) -> Any:
        url = f"{self.vertex}/v1/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def endpoints(self) -> list[dict[str, Any]]:
        return list(self.get(f"{LOCATION}/endpoints", pageSize="1000").get("endpoints", []))

    def production(self) -> dict[str, Any]:
        [endpoint] = [e for e in self.endpoints() if e["displayName"] == self.endpoint_name]
        return endpoint

    def versions(self) -> dict[str, list[str]]:
        [model] = self.get(f"{LOCATION}/models", filter=f'display_name="{self.model_name}"')["models"]
        versions = self.get(f"{model['name']}:listVersions")["models"]
        return {v["versionId"]: sorted(v.get("versionAliases", [])) for v in versions}


@pytest.fixture(scope="module")
def story(gcs_emulator: str, run_dir: Path) -> Iterator[Story]:
    # A Vertex of its own: these tests count every model and endpoint the emulator holds, and a long
    # job another test left running on the session's emulator, ending during a run here, uploads and
    # deploys its own model (seen once in make test: one model and one endpoint too many).
    server = start_vertex_emulator(run_dir, gcs_url=gcs_emulator, name="vertex-promotion")
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in FAST.items():
                patch.setenv(key, value)
            airflow_support.use_emulators(server.url, patch)
            airflow_support.migrate_database()
            create_buckets(["aria-datasets", "aria-pipeline-root"])
            bag = parse_dags()
            assert not bag.import_errors, bag.import_errors
            yield Story(bag.dags["aria_text_tuning"], bag.dags["aria_text_rollback"], server.url)
    finally:
        server.stop()


def _serving(story: Story) -> set[str]:
    return {e["name"] for e in story.endpoints() if e.get("deployedModels")}


def _counts(story: Story) -> dict[str, int]:
    return {k: v for k, v in emulator_control(story.vertex, "counts").items() if isinstance(v, int)}


def run(story: Story, key: str, date: str, sample: str, **conf: Any) -> dict[str, Any]:
    """One run of the tuning DAG on `sample` as version `date`, and what it changed in the emulator."""
    upload_version(sample, as_version=date)
    before, serving = _counts(story), _serving(story)
    state, states, xcoms = run_dag(story.tuning, date, story.conf(**conf))
    after = _counts(story)
    story.runs[key] = {
        "state": state,
        "states": states,
        "xcoms": xcoms,
        "delta": {k: after[k] - before.get(k, 0) for k in ("models", "modelVersions", "endpoints")},
        "delta_evaluations": after["modelEvaluations"] - before.get("modelEvaluations", 0),
        "newly_serving": _serving(story) - serving,
        "versions": story.versions(),
        # None when the run made no production endpoint (a failed first run: its test says why).
        "production": next((e for e in story.endpoints() if e["displayName"] == story.endpoint_name), None),
    }
    return story.runs[key]


def assert_leaves_nothing_behind(story: Story, result: dict[str, Any], first: bool) -> None:
    """One parent model with one more version; only the production endpoint serves of what the run made."""
    assert result["delta"] == {
        "models": 1 if first else 0,
        "modelVersions": 1,
        "endpoints": 1 if first else 0,
    }
    assert result["newly_serving"] <= {story.production()["name"]}
    assert not [e for e in story.endpoints() if e["displayName"] == f"{story.endpoint_name}-eval"]
    tuned = result["xcoms"]["tune"]
    with pytest.raises(urllib.error.HTTPError, match="404"):  # the pipeline's own endpoint and model went
        story.get(tuned["endpoint"])
    with pytest.raises(urllib.error.HTTPError, match="404"):
        story.get(tuned["tuned_model"].split("@")[0])
    assert result["states"]["tear_down_evaluation"] == "success"
    assert result["states"]["clean_up_tuning_outputs"] == "success"
    assert_evidence(story, result)


def assert_evidence(story: Story, result: dict[str, Any]) -> None:
    """The run's report is in GCS next to the prepared data and recorded as the version's evaluation."""
    from aria_tuning.hooks.gcs import StorageHook

    gate = result["xcoms"]["quality_gate"]
    prepared = result["xcoms"]["resolve_dataset_version"]["prepared_uri"]
    assert gate["report"]["html"].startswith(f"{prepared}evaluation/")
    numbers = json.loads(StorageHook().read_text(gate["report"]["json"]))
    assert numbers["decision"] == gate["decision"] and numbers["tuning_curve"]["train_loss"]
    version = result["xcoms"]["register_model"]["model_version"]
    evaluations = story.get(f"{version}/evaluations").get("modelEvaluations", [])
    assert [e["name"] for e in evaluations] == [gate["model_evaluation"]]
    assert result["delta_evaluations"] == 1


def _degraded(story: Story) -> None:
    """A run whose pipeline job is steered to upload an untuned-quality model."""
    settings = EmulatorSettings(story.vertex)
    settings.set(secondsPerStep=0.3)  # the job runs long enough to be steered
    degraded: list[str] = []
    stop = threading.Event()

    def degrade_the_job() -> None:
        jobs = f"{story.vertex}/v1/{LOCATION}/pipelineJobs"
        while not stop.wait(0.1) and not degraded:
            with urllib.request.urlopen(jobs, timeout=10) as response:
                for job in json.loads(response.read()).get("pipelineJobs", []):
                    if "2031-01-19" in json.dumps(job.get("runtimeConfig", {})):
                        emulator_control(story.vertex, f"jobs/{job['name']}:degrade", {})
                        degraded.append(job["name"])

    before = story.production()
    watcher = threading.Thread(target=degrade_the_job, daemon=True)
    watcher.start()
    try:
        result = run(story, "degraded", "2031-01-19", "2025-06-15")
    finally:
        stop.set()
        watcher.join()
        settings.restore()
    result.update(degraded=degraded, production_before=before)


def _rollback(story: Story) -> None:
    """The rollback DAG to the previous production version, again (nothing to do), then to a version
    that does not exist."""
    conf = {
        "tuned_model_name": story.model_name,
        "endpoint_name": story.endpoint_name,
        "region": "europe-west4",
    }
    ran: list[dict[str, Any]] = []
    for date, version in (
        ("2031-01-20", "previous production"),
        ("2031-01-21", "previous production"),
        ("2031-01-22", "7"),
    ):
        state, states, xcoms = run_dag(story.rollback, date, {**conf, "version": version})
        ran.append(
            {
                "state": state,
                "states": states,
                "xcoms": xcoms,
                "production": story.production(),
                "versions": story.versions(),
            }
        )
    story.runs["rollback"] = {"runs": ran}


#: The story's steps, in order: each builds on the ones before it.
STEPS: dict[str, Callable[[Story], Any]] = {
    "first": lambda story: run(story, "first", "2031-01-05", "2025-06-01"),
    "second": lambda story: run(story, "second", "2031-01-12", "2025-06-08"),
    "degraded": _degraded,
    "rollback": _rollback,
}


def test_a_first_run_is_promoted_against_the_base_model(story: Story) -> None:
    result = story.step("first")
    assert result["state"] == "success", result["states"]
    gate = result["xcoms"]["quality_gate"]
    assert gate["passed"] and gate["champion"]["kind"] == "base model"
    assert gate["candidate"]["aggregates"]["rouge_l"] > 0.9 > gate["champion"]["aggregates"]["rouge_l"]
    rollout = result["xcoms"]["deploy_model"]
    assert rollout["steps"] == []  # nothing served before: no canary, all traffic at once
    assert result["versions"] == {"1": ["candidate", "default", "production"]}
    assert_leaves_nothing_behind(story, result, first=True)


def test_the_demo_prints_the_champion_challenger_table_the_decision_and_the_report(story: Story) -> None:
    from scripts.demo import evaluation

    gate = story.step("first")["xcoms"]["quality_gate"]
    lines = evaluation(gate)
    print("\n".join(lines))  # what `make demo` shows for this run (pytest -s)
    rows = {
        line.split()[0]: line
        for line in lines
        if line.startswith("  ") and line.split()[0] in gate["rule"]["metrics"]
    }
    assert set(rows) == {"exact_match", "bleu", "rouge_l"} and "<- primary" in rows["rouge_l"]
    assert f"{gate['candidate']['aggregates']['rouge_l']:.3f}" in rows["rouge_l"]
    assert any(line.startswith("Decision          PROMOTE") for line in lines)
    assert any(line.startswith("Report") and gate["report"]["html"] in line for line in lines)


def test_a_second_run_with_a_better_dataset_is_promoted_against_the_first(story: Story) -> None:
    result = story.step("second")
    assert result["state"] == "success", result["states"]
    gate = result["xcoms"]["quality_gate"]
    first = story.step("first")["xcoms"]["register_model"]["model_version"]
    assert gate["passed"] and gate["champion"]["model"] == first
    assert gate["candidate"]["aggregates"]["rouge_l"] > gate["champion"]["aggregates"]["rouge_l"]
    rollout = result["xcoms"]["deploy_model"]
    assert [step["share"] for step in rollout["steps"]] == [10]  # the canary, soaked, then all traffic
    assert rollout["retired"] == [first]
    assert [d["modelVersionId"] for d in result["production"]["deployedModels"]] == ["2"]
    assert result["versions"] == {"1": ["default"], "2": ["candidate", "production"]}
    assert_leaves_nothing_behind(story, result, first=False)


def test_a_degraded_candidate_is_refused_and_production_is_byte_for_byte_unchanged(story: Story) -> None:
    result = story.step("degraded")
    assert result["degraded"], "the pipeline job was never seen to degrade it"
    assert result["state"] == "failed"
    states = result["states"]
    assert states["quality_gate"] == "failed" and states["deploy_model"] == "upstream_failed"
    # Split, deployed models, update time: as the run found them.
    assert json.dumps(result["production"], sort_keys=True) == json.dumps(
        result["production_before"], sort_keys=True
    )
    assert result["versions"] == {"1": ["default"], "2": ["production"], "3": ["candidate", "rejected"]}
    assert result["delta"] == {"models": 0, "modelVersions": 1, "endpoints": 0}
    assert result["newly_serving"] == set()
    assert not [e for e in story.endpoints() if e["displayName"] == f"{story.endpoint_name}-eval"]
    assert states["tear_down_evaluation"] == "success"
    # The refusal has its evidence too: the report, and the evaluation on the rejected version.
    assert not result["xcoms"]["quality_gate"]["passed"]
    assert_evidence(story, result)


def test_the_rollback_dag_restores_the_previous_version_and_is_idempotent(story: Story) -> None:
    restore, again, unknown = story.step("rollback")["runs"]
    assert restore["state"] == "success", restore["states"]
    restored = restore["xcoms"]["roll_back"]
    assert restored["model_version"].endswith("@1") and restored["rolled_back_from"].endswith("@2")
    production = restore["production"]
    assert [d["modelVersionId"] for d in production["deployedModels"]] == ["1"]
    assert list(production["trafficSplit"].values()) == [100]
    assert (
        restore["versions"]["1"] == ["default", "production"] and "production" not in restore["versions"]["2"]
    )

    assert again["state"] == "success", again["states"]
    assert json.dumps(again["production"], sort_keys=True) == json.dumps(production, sort_keys=True)

    assert unknown["state"] == "failed" and unknown["states"]["roll_back"] == "failed"
    assert json.dumps(unknown["production"], sort_keys=True) == json.dumps(production, sort_keys=True)
