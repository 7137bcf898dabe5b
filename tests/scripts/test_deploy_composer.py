"""`make deploy-composer` in dry-run mode prints the gcloud commands and runs none."""

from __future__ import annotations

import os
import subprocess

from tests.support.airflow import REPO


def dry_run(**env: str) -> str:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy_composer.sh")],
        env={**os.environ, "DRY_RUN": "1", "PATH": "/usr/bin:/bin", **env},
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout


def test_dry_run_prints_uploads_packages_and_variables() -> None:
    out = dry_run(COMPOSER_ENV="aria-composer", ARIA_PROJECT="my-project", ARIA_DATA_BUCKET="my-data")
    commands = [line for line in out.splitlines() if line.startswith("+ gcloud")]
    assert any("storage dags import" in c and "dags/aria_text_tuning.py" in c for c in commands)
    assert any("storage plugins import" in c and "plugins/aria_tuning" in c for c in commands)
    assert any("--update-pypi-packages-from-file" in c for c in commands)
    assert any("variables set -- aria_project my-project" in c for c in commands)
    assert any("variables set -- aria_data_bucket my-data" in c for c in commands)
    assert all("--location europe-west4" in c for c in commands)
    # Composer fixes Airflow and its Google provider: never reinstall them.
    assert "#   apache-airflow" not in out and "#   google-cloud-aiplatform==" in out
    assert "sample_data" not in out.replace("except the sample", "")


def test_requires_an_environment_name() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy_composer.sh")],
        env={**os.environ, "DRY_RUN": "1", "COMPOSER_ENV": ""}, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0 and "COMPOSER_ENV" in result.stderr
