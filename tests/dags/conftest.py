"""The DAG folder parsed once per session, the way the DAG processor parses it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.airflow import REPO

DAG_ID = "aria_text_tuning"
#: The DAG's sensor, poll, retry and canary clocks in seconds, for dag.test() runs on the emulators.
FAST = {
    "ARIA_UPLOAD_INACTIVITY_SECONDS": "1",
    "ARIA_SENSOR_POKE_SECONDS": "1",
    "ARIA_VERTEX_POLL_SECONDS": "1",
    "ARIA_RETRY_DELAY_SECONDS": "1",
    "ARIA_CANARY_SOAK_SECONDS": "1",
}


def parse_dags() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=str(REPO / "dags"))


@pytest.fixture(scope="session")
def dagbag() -> Any:
    return parse_dags()


@pytest.fixture(scope="session")
def dag(dagbag: Any) -> Any:
    assert not dagbag.import_errors, dagbag.import_errors
    return dagbag.dags[DAG_ID]
