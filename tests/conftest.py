"""Session fixtures: the offline cloud (GCS and Vertex AI emulators) as real local processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import airflow as airflow_support
from tests.support.processes import start_gcs_emulator


def pytest_configure(config: pytest.Config) -> None:
    # Airflow reads AIRFLOW_HOME and its settings at import: set them before any test imports it.
    airflow_support.configure_environment()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session's background processes write their logs and state."""
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def gcs_emulator(run_dir: Path) -> Iterator[str]:
    """URL of a GCS emulator process; STORAGE_EMULATOR_HOST points at it for the session."""
    service, url = start_gcs_emulator(run_dir)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        service.stop()
