"""The DAG end to end through `dag.test()` against the GCS and Vertex AI emulators.

Each test uploads its own dataset version (its own logical date) and names its own model, so the
tests share the session's emulators without seeing each other's resources.
"""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.demo import run_dag
from scripts.sample_data import create_buckets, sample_signature, upload_version
from tests.dags.conftest import FAST, parse_dags
from tests.support import airflow as airflow_support
from tests.support.emulator_settings import EmulatorSettings


@pytest.fixture(scope="module")
def e2e_dag(gcs_emulator: str, vertex_emulator: str) -> Iterator[Any]:
    """The DAG parsed with emulator-speed polling, on a migrated test database."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAST.items():
            patch.setenv(key, value)
        airflow_support.use_emulators(vertex_emulator, patch)
        airflow_support.migrate_database()
        create_buckets(["aria-datasets", "aria-pipeline-root"])
        bag = parse_dags()
        assert not bag.import_errors, bag.import_errors
        yield bag.dags["aria_text_tuning"]


def _json(url: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def counts(vertex: str) -> dict[str, int]:
    found = _json(f"{vertex}/_emulator/counts")
    return {k: v for k, v in found.items() if isinstance(v, int)}


def new_jobs(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Vertex jobs created between two `counts` (tests run one at a time on the session emulator)."""
    return {kind: after[kind] - before[kind] for kind in ("pipelineJobs", "tuningJobs")}


def conf(**overrides: Any) -> dict[str, Any]:
    # Every param a test varies is given explicitly: dag.test() keeps the previous run's conf in dag.params.
    defaults = {
        "base_model": "text-bison@001",
        "dry_run": False,
        "dataset_uri": None,
        "allow_unmanifested": False,
        "refuse_unlisted": False,
    }
    return {**defaults, "tuned_model_name": f"ARIA-text-test-{uuid.uuid4().hex[:8]}", **overrides}


def test_text_bison_success_tunes_registers_deploys_and_promotes(e2e_dag: Any, vertex_emulator: str) -> None:
    uploaded = upload_version("2025-06-01", as_version="2030-01-06")
    before = counts(vertex_emulator)
    state, states, xcoms = run_dag(e2e_dag, "2030-01-06", conf(base_model="text-bison@001"))
    assert state == "success", states
    assert new_jobs(before, counts(vertex_emulator)) == {"pipelineJobs": 1, "tuningJobs": 0}
    assert states["tune"] == "success" and states["dry_run_report"] == "skipped"
    prep = xcoms["prepare_dataset"]
    assert prep["counts"]["train"] + prep["counts"]["eval"] == uploaded.examples
    assert prep["plan"]["train_steps"] == -(-3 * prep["counts"]["train"] // 24)
    assert "/pipelineJobs/" in xcoms["tune"]["job"] and xcoms["tune"]["state"] == "SUCCEEDED"
    assert "candidate" in xcoms["register_model"]["aliases"]
    gate = xcoms["quality_gate"]
    # The first run's champion is the base model; the candidate clears the default floor as well.
    assert gate["passed"] and gate["champion"]["kind"] == "base model"
    assert gate["candidate"]["aggregates"]["rouge_l"] >= gate["rule"]["floor"] == 0.85
    model = _json(f"{vertex_emulator}/v1/{xcoms['register_model']['model_version']}")
    assert "production" in model["versionAliases"]


def test_gemini_success_and_the_answers_come_from_the_dataset_version(
    e2e_dag: Any, vertex_emulator: str
) -> None:
    upload_version("2025-06-08", as_version="2030-01-13")
    before = counts(vertex_emulator)
    state, states, xcoms = run_dag(e2e_dag, "2030-01-13", conf(base_model="gemini-2.5-flash"))
    assert state == "success", states
    assert new_jobs(before, counts(vertex_emulator)) == {"pipelineJobs": 0, "tuningJobs": 1}
    assert "/tuningJobs/" in xcoms["tune"]["job"]
    assert xcoms["prepare_dataset"]["plan"]["method"] == "tuning_job"
    answers = [sample["answer"] for sample in xcoms["quality_gate"]["samples"]]
    signature = sample_signature("2025-06-08")
    assert answers and all(answer.rstrip().endswith(signature) for answer in answers)


def test_bad_dataset_fails_in_prep_with_file_and_line_and_starts_no_job(
    e2e_dag: Any, vertex_emulator: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps({"input_text": "Hola, ¿qué tarifa tengo?", "output_text": "Tienes Nubia Básica."})
    bad = tmp_path / "bad.jsonl"
    lines = [good] * 3 + ['{"input_text": "sin cerrar"', json.dumps({"input_text": "sin respuesta"})]
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    upload_version(as_version="2030-01-20", files=[bad])
    before = counts(vertex_emulator)
    state, states, _ = run_dag(e2e_dag, "2030-01-20", conf())
    output = capfd.readouterr()
    assert state == "failed"
    assert states["prepare_dataset"] == "failed"
    assert states["tune"] in ("upstream_failed", "None")
    assert "bad.jsonl:4:" in output.out + output.err and "bad.jsonl:5:" in output.out + output.err
    after = counts(vertex_emulator)
    assert (after["pipelineJobs"], after["tuningJobs"]) == (before["pipelineJobs"], before["tuningJobs"])


def test_vertex_failure_fails_the_run_and_deploys_nothing(
    e2e_dag: Any, vertex_emulator: str, emulator_settings: EmulatorSettings
) -> None:
    upload_version("2025-06-01", as_version="2030-01-27")
    emulator_settings.set(secondsPerStep=0.3)
    stop = threading.Event()
    failed: set[str] = set()

    def fail_every_job() -> None:
        # Vertex fails each attempt (the retry included) while it runs.
        jobs_url = f"{vertex_emulator}/v1/projects/aria-local/locations/europe-west4/pipelineJobs"
        while not stop.wait(0.2):
            for job in _json(jobs_url).get("pipelineJobs", []):
                if job["state"] in (
                    "PIPELINE_STATE_RUNNING",
                    "PIPELINE_STATE_PENDING",
                ) and "2030-01-27" in str(job.get("labels", {})) + json.dumps(job.get("runtimeConfig", {})):
                    _json(
                        f"{vertex_emulator}/_emulator/jobs/{job['name']}:fail",
                        {"message": "RESOURCE_EXHAUSTED: TPU v3 quota exceeded (injected)"},
                    )
                    failed.add(job["name"])

    watcher = threading.Thread(target=fail_every_job, daemon=True)
    watcher.start()
    before = counts(vertex_emulator)
    try:
        state, states, _ = run_dag(e2e_dag, "2030-01-27", conf())
    finally:
        stop.set()
        watcher.join()
    assert failed, "no pipeline job was seen running"
    # A job Vertex failed fails `tune` without its retry (a retry would spend on the same failure).
    assert new_jobs(before, counts(vertex_emulator)) == {"pipelineJobs": 1, "tuningJobs": 0}
    assert len(failed) == 1
    assert state == "failed"
    assert states["tune"] == "failed"
    assert {states[t] for t in ("register_model", "deploy_model", "quality_gate")} == {"upstream_failed"}
    after = counts(vertex_emulator)
    assert after["endpoints"] == before["endpoints"]
    assert after["models"] == before["models"]


def test_dry_run_validates_and_plans_but_spends_nothing(e2e_dag: Any, vertex_emulator: str) -> None:
    upload_version("2025-06-15", as_version="2030-02-03")
    before = counts(vertex_emulator)
    state, states, xcoms = run_dag(e2e_dag, "2030-02-03", conf(dry_run=True))
    assert state == "success", states
    assert states["dry_run_report"] == "success"
    assert {states[t] for t in ("tune", "register_model", "deploy_model", "quality_gate")} == {"skipped"}
    assert xcoms["dry_run_report"]["plan"]["train_steps"] > 0
    after = counts(vertex_emulator)
    assert {k: after[k] for k in ("pipelineJobs", "tuningJobs", "models", "endpoints")} == {
        k: before[k] for k in ("pipelineJobs", "tuningJobs", "models", "endpoints")
    }


# --- publishing: the manifest decides when a version is complete ----------------------------------


def _version(date: str) -> str:
    return f"aria-text/raw/v={date}/"


def _break_version(case: str, date: str, tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """Publish the sample as `date`, then break it as `case`; returns (conf overrides, expected text).

    The overrides name the version (`dataset_uri`): a manual run without one trains the newest complete
    version instead (#16), which is not the broken one.
    """
    from aria_tuning.manifest import MANIFEST_NAME, Manifest, ManifestFile

    from scripts.sample_data import sample_files, storage_client

    client, prefix = storage_client(), _version(date)
    bucket = client.bucket("aria-datasets")
    uri = f"gs://aria-datasets/{prefix}"
    if case == "manifest_first":
        # Right about the files' contents (crc32c computed here), but written before they landed.
        staged = bucket.blob(f"staging-{uuid.uuid4().hex[:8]}.jsonl")
        entries = []
        for path in sample_files("2025-06-01"):
            staged.upload_from_filename(str(path))
            entries.append(ManifestFile(path.name, int(staged.size), str(staged.crc32c)))
        staged.delete()
        bucket.blob(prefix + MANIFEST_NAME).upload_from_string(Manifest.new(entries).to_json())
        bucket.blob(prefix + entries[0].name).upload_from_filename(str(sample_files("2025-06-01")[0]))
        return {"dataset_uri": uri}, [
            f"{uri}{entries[1].name}: listed in the manifest",
            "was the manifest written before its files?",
        ]
    uploaded = upload_version("2025-06-01", as_version=date)
    first, second = (name.rsplit("/", 1)[1] for name in uploaded.objects[:2])
    if case == "missing":
        bucket.blob(prefix + second).delete()
        return {"dataset_uri": uri}, [
            f"{uri}{second}: listed in the manifest",
            "missing in GCS (crc32c: none)",
        ]
    if case == "checksum":
        listed = bucket.get_blob(prefix + first)
        data = listed.download_as_bytes()
        changed = bucket.blob(prefix + first)
        changed.upload_from_string(data.replace(b"a", b"e", 1))  # same size, other bytes
        return {"dataset_uri": uri}, [
            f"{uri}{first}: differs from the manifest",
            f"crc32c {changed.crc32c} in GCS",
            f"{listed.crc32c} in the manifest",
        ]
    assert case == "unlisted_refused"
    bucket.blob(prefix + "stray.jsonl").upload_from_string('{"input_text": "x", "output_text": "y"}\n')
    return {"refuse_unlisted": True, "dataset_uri": uri}, [f"{uri}stray.jsonl: not listed in the manifest"]


@pytest.mark.parametrize(
    ("case", "date"),
    [
        ("missing", "2030-03-03"),
        ("checksum", "2030-03-10"),
        ("unlisted_refused", "2030-03-17"),
        ("manifest_first", "2030-03-24"),
    ],
)
def test_a_version_that_does_not_match_its_manifest_fails_in_the_sensor_and_starts_no_job(
    e2e_dag: Any,
    vertex_emulator: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    case: str,
    date: str,
) -> None:
    overrides, expected = _break_version(case, date, tmp_path)
    before = counts(vertex_emulator)
    state, states, _ = run_dag(e2e_dag, date, conf(**overrides))
    output = capfd.readouterr()
    assert state == "failed"
    assert states["wait_for_dataset_version"] == "failed", states
    assert states["prepare_dataset"] in ("upstream_failed", "None")
    for text in expected:
        assert text in output.out + output.err, text
    after = counts(vertex_emulator)
    assert (after["pipelineJobs"], after["tuningJobs"]) == (before["pipelineJobs"], before["tuningJobs"])


def test_published_with_the_command_line_then_trained_on_exactly_the_verified_files(
    e2e_dag: Any, vertex_emulator: str
) -> None:
    from aria_tuning.cli import main

    from scripts.sample_data import sample_files, storage_client

    uri = f"gs://aria-datasets/{_version('2030-04-07')}"
    assert main(["publish", *map(str, sample_files("2025-06-15")), uri]) == 0
    # Not in the manifest: reported and ignored (a version's prefix may collect other objects).
    storage_client().bucket("aria-datasets").blob(_version("2030-04-07") + "notes.jsonl").upload_from_string(
        '{"input_text": "no", "output_text": "listed"}\n'
    )
    state, states, xcoms = run_dag(e2e_dag, "2030-04-07", conf())
    assert state == "success", states
    sensed = xcoms["wait_for_dataset_version"]
    assert sensed["mode"] == "manifest" and sensed["unlisted"] == [uri + "notes.jsonl"]
    assert all(o["uri"] == f"gs://aria-datasets/{o['name']}#{o['generation']}" for o in sensed["objects"])
    assert xcoms["prepare_dataset"]["counts"]["read"] == sensed["manifest"]["example_count"]
    assert xcoms["tune"]["state"] == "SUCCEEDED" and xcoms["quality_gate"]["passed"]


def test_a_published_version_is_not_republished_over_and_runs_on_what_was_published(
    e2e_dag: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aria_tuning.cli import main

    first = upload_version("2025-06-01", as_version="2030-04-14", force=False)
    other = tmp_path / "part-000.jsonl"
    other.write_text('{"input_text": "otra", "output_text": "versión"}\n' * 20, encoding="utf-8")
    assert main(["publish", str(other), first.uri]) == 1
    assert f"{first.uri} is already published" in capsys.readouterr().err
    state, states, xcoms = run_dag(e2e_dag, "2030-04-14", conf(dry_run=True))
    assert state == "success", states
    assert xcoms["prepare_dataset"]["counts"]["read"] == first.examples


def test_a_version_without_a_manifest_runs_under_the_fallback_param(
    e2e_dag: Any, vertex_emulator: str
) -> None:
    uploaded = upload_version("2025-06-08", as_version="2030-04-21", manifest=False)
    assert uploaded.manifest_uri is None
    before = counts(vertex_emulator)
    # A manual run with no dataset_uri trains the newest complete version (#16): name this one.
    uri = f"gs://aria-datasets/{_version('2030-04-21')}"
    state, states, xcoms = run_dag(e2e_dag, "2030-04-21", conf(allow_unmanifested=True, dataset_uri=uri))
    assert state == "success", states
    sensed = xcoms["wait_for_dataset_version"]
    assert sensed["mode"] == "inactivity" and sensed["manifest"] is None
    assert sorted(o["name"] for o in sensed["objects"]) == sorted(uploaded.objects)
    assert xcoms["prepare_dataset"]["counts"]["read"] == uploaded.examples
    assert counts(vertex_emulator)["pipelineJobs"] == before["pipelineJobs"] + 1
