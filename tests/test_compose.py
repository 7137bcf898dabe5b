"""docker-compose.yaml is valid Compose and everything it mounts or builds is in the repository.

No Docker daemon here: the file is checked against the Compose Specification's JSON schema
(vendored in tests/data/compose-spec.json from the `check-jsonschema` wheel, Apache-2.0, see
tests/data/LICENSE.compose-spec), and its paths against the working tree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _short_volumes(service: dict[str, Any]) -> list[str]:
    return [v for v in service.get("volumes", []) if isinstance(v, str)]


def test_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_has_the_official_airflow_services_and_the_emulators(compose: dict[str, Any]) -> None:
    expected = {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-init",
        "gcs",
        "vertex",
    }
    assert expected <= set(compose["services"])


def test_every_bind_mount_and_build_context_exists(compose: dict[str, Any]) -> None:
    named_volumes = set(compose.get("volumes", {}))
    checked = []
    for name, service in compose["services"].items():
        for volume in _short_volumes(service):
            source = volume.split(":")[0]
            if source in named_volumes:
                continue
            assert source.startswith("./"), f"{name}: bind mount {source!r} must be relative to the repo"
            assert (ROOT / source).exists(), f"{name}: mounted path {source} does not exist"
            checked.append(source)
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} does not exist"
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: {dockerfile} not found in {context}"
    assert {"./dags", "./plugins", "./include", "./include/sample_data/gcs"} <= set(checked)


def test_airflow_services_mount_dags_plugins_and_include(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name.startswith("airflow-"):
            targets = {v.split(":")[1] for v in _short_volumes(service)}
            assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= targets, name


def test_published_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: port {port} is published on every interface"


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    missing = [n for n, s in compose["services"].items() if n != "airflow-init" and "healthcheck" not in s]
    assert not missing


def test_gcs_emulator_runs_fake_gcs_server_over_http_seeded_with_sample_data(compose: dict[str, Any]) -> None:
    gcs = compose["services"]["gcs"]
    assert gcs["image"].startswith("fsouza/fake-gcs-server")
    command = gcs["command"]
    assert command[command.index("-scheme") + 1] == "http"
    seed = ROOT / "include" / "sample_data" / "gcs"
    assert any(seed.glob("aria-datasets/aria-text/raw/v=*/*.jsonl"))


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yaml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used - documented == set(), f"undocumented in .env.example: {sorted(used - documented)}"
    assert documented - used == set(), f".env.example documents unused variables: {sorted(documented - used)}"
