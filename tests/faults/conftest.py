"""The fault suite's fixtures: one real Airflow on the emulators per session, and the results table.

Every test here is marked `faults`. Scenarios in CI_SCENARIOS also run in `make test`; the others only
in `make faults` (ARIA_FAULTS=all), to keep `make test` within CI's budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.soak import OPERATION_SECONDS
from scripts.airflow_stack import AirflowStack
from tests.faults import checks

#: Scenarios cheap enough for every `make test` (each costs one DAG run of about a minute). From
#: test_two_triggerers.py (its own Airflow: two triggerers, PostgreSQL, ~2 min to start): the reconciler's
#: orphan (r1) and unlabelled job (r3), and the first runs of the seeded soak; t1-t3 (~3 min each here)
#: and r2 run in `make faults`.
CI_SCENARIOS = frozenset({"s1", "s3", "s5", "s8", "r1", "r3", "soak"})
#: `@pytest.mark.parametrize("stack", [GCS_GATE], indirect=True)`: the scenario's stack sends Airflow's
#: GCS calls through the Vertex emulator's GCS gate, where fault rules of "service": "gcs" strike.
GCS_GATE = "gcs-gate"
#: Fast clocks and polls for the suite's Airflow; the DAG's shipped values are for real Vertex.
SUITE_ENV = {
    # Periodic, so scenario 7 can backfill (the scheduler's own latest run is failed before each scenario).
    "ARIA_TUNING_SCHEDULE": "@weekly",
    # The reconciler runs when a scenario triggers it, never on its hourly schedule.
    "ARIA_RECONCILE_SCHEDULE": "none",
    "ARIA_SENSOR_POKE_SECONDS": "2",
    "ARIA_UPLOAD_INACTIVITY_SECONDS": "4",
    "ARIA_VERTEX_POLL_SECONDS": "2",
    "ARIA_RETRY_DELAY_SECONDS": "3",
    # The DAG's canary serves 30 min before its error check: seconds here.
    "ARIA_CANARY_SOAK_SECONDS": "2",
    # A task's supervisor waits 5 s per Execution API call by default; a busy 2-core machine (and a cold
    # api-server) answers slower, and a task that cannot start dies ("Workload execution failed").
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
    # A dead triggerer's triggers move to a live one after this many seconds without a heartbeat.
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
}


def scenario_id(item: pytest.Item) -> str:
    return item.name.removeprefix("test_").split("_", 1)[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_all = os.environ.get("ARIA_FAULTS") == "all"
    here = Path(__file__).parent
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.faults)
        if not run_all and scenario_id(item) not in CI_SCENARIOS:
            item.add_marker(
                pytest.mark.skip(reason="long fault scenario: runs in `make faults` (ARIA_FAULTS=all)")
            )


# Module scope: torn down (and its environment restored) before the next module, which may bring its own
# stack (test_two_triggerers.py): never two Airflows at once on a small machine. A scenario asking for
# the GCS gate (GCS_GATE) gets a stack of its own, and pytest ends the plain one first (a module-scoped
# fixture holds one instance: a different param finishes the cached one before starting the next).
@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    gate = getattr(request, "param", None) == GCS_GATE
    started = AirflowStack(tmp_path_factory.mktemp("faults"), extra_env=SUITE_ENV, gcs_gate=gate)
    try:
        started.start()
        started.wait_dag_parsed()
        time.sleep(5)  # let the scheduler create its first scheduled run, failed before each scenario
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def clean_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """No fault rules and the suite's clock before each scenario; jobs of earlier scenarios stay."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: AirflowStack = request.getfixturevalue("stack")
    stack.fail_scheduled_runs()
    stack.control("DELETE", "faults")
    # Deploys take seconds, as in the soak: one that is done at once resumes its deferred task before the
    # scheduler has read the deferring try's exit, and the LocalExecutor then fails the resumed try
    # ("TI was not in the running state", seen in s1 of make test). On Vertex a deploy takes minutes.
    stack.control(
        "PATCH", "settings", {"secondsPerStep": stack.seconds_per_step, "operationSeconds": OPERATION_SECONDS}
    )
    yield
    stack.control("DELETE", "faults")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if checks.RESULTS:
        terminalreporter.write_sep("=", "fault suite")
        terminalreporter.write_line(checks.table(checks.RESULTS))
