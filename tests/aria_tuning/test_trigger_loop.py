"""No trigger of ours holds the triggerer's event loop for more than 0.1 s, on either transport.

Each trigger runs in a fresh interpreter (tests/aria_tuning/loop_probe.py) in asyncio debug mode: no loop
step may compute for more than 0.1 s, no blocking I/O may run on the loop's thread (the first imports of
the Google clients, credentials, channel setup, file reads go off the loop), and a watchdog like the
triggerer's must not see the loop thread starved while that work runs in a worker thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from tests.aria_tuning.conftest import FAST, new_ti, submit, tuning_operator
from tests.support import airflow as airflow_support
from tests.support.airflow import REPO

LIMIT_SECONDS = 0.1
#: How late a 0.1 s sleep on the loop may wake (the triggerer's blocked_main_thread_warning_threshold: 0.2 s).
WATCHDOG_SECONDS = 0.3

pytestmark = pytest.mark.usefixtures("transport")


def probe(trigger: Any) -> dict[str, Any]:
    """The trigger's first event and the slow callbacks seen while it ran, from a fresh process."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.aria_tuning.loop_probe",
            json.dumps(trigger.serialize()),
            str(LIMIT_SECONDS),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def assert_never_blocked(report: dict[str, Any]) -> None:
    """No step of run() computed for more than the limit, none did blocking I/O on the loop's thread,
    and importing the trigger's module (which the triggerer does on its loop) stayed under the limit."""
    wall = "".join(f"\n  {s['seconds']:.3f}s {s['what']}" for s in report["slow"])
    context = f"\nasyncio's slow-callback report (wall clock):{wall or ' none'}"
    assert not report["blocking_io"], f"blocking I/O on the event loop: {report['blocking_io']}{context}"
    assert not report["busy"], f"steps over {LIMIT_SECONDS}s of CPU on the loop: {report['busy']}{context}"
    assert report["import_cpu"] < LIMIT_SECONDS, (
        f"importing the trigger took {report['import_cpu']}s{context}"
    )
    # A loop thread starved of the GIL between callbacks (garbage collections during the first import of
    # the Google clients in a worker thread held it for 0.6 s) shows only in a watchdog like the
    # triggerer's own, which warns from 0.2 s; less than that is this shared machine's scheduling.
    assert report["watchdog_late"] < WATCHDOG_SECONDS, (
        f"the loop woke {report['watchdog_late']}s late{context}"
    )


@pytest.mark.parametrize("model", ["text-bison@001", "gemini-3.5-flash"])
def test_the_tuning_trigger_never_blocks_the_loop(vertex: str, datasets: dict[str, str], model: str) -> None:
    trigger = submit(
        tuning_operator(datasets, model, **({"train_steps": 20} if "bison" in model else {})), new_ti()
    )
    report = probe(trigger)
    assert report["event"]["status"] == "success", report["event"]
    assert_never_blocked(report)


def test_the_operation_trigger_never_blocks_the_loop(vertex: str) -> None:
    from aria_tuning.hooks import VertexHook
    from aria_tuning.triggers import VertexOperationTrigger

    region = "us-central1"
    client = VertexHook().client("endpoint", region)
    operation = client.create_endpoint(
        parent=f"projects/{airflow_support.PROJECT}/locations/{region}",
        endpoint={"display_name": f"loop-probe-{uuid.uuid4().hex[:8]}"},
    )
    trigger = VertexOperationTrigger(operation_names=[operation.operation.name], service="endpoint", **FAST)
    report = probe(trigger)
    assert report["event"]["status"] == "success", report["event"]
    assert_never_blocked(report)
