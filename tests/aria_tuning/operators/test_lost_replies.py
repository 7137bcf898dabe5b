"""Lost replies on the creates that cost money: the create landed on Vertex, its answer never came back.

A pipeline job carries our id, so repeating its create is safe: Vertex refuses the repeat (409) and
the hook re-attaches. A Gemini tuning job gets Vertex's id, so its create is never repeated blindly:
the task fails, and its retry finds the job that did land by the run-key label. Either way one run.
"""

from __future__ import annotations

import pytest
from aria_tuning.errors import VertexError

from scripts.emulators import emulator_control
from tests.aria_tuning.conftest import LONG_STEPS, Emulator, jobs_for, new_ti, submit, tuning_operator
from tests.support import airflow as airflow_support

# Every test runs on both Vertex transports: gRPC (what Google Cloud uses) and REST.
pytestmark = pytest.mark.usefixtures("transport")

CREATE_PIPELINE = "POST /v1/{parent=projects/*/locations/*}/pipelineJobs"
CREATE_TUNING = "POST /v1/{parent=projects/*/locations/*}/tuningJobs"
#: After-commit faults: the create is applied, then the client gets a 503, or no reply at all.
LOST = {"503": {"status": 503}, "drop": {"mode": "drop"}}
GEMINI = "gemini-2.5-flash"


def creates(vertex: str, route: str) -> int:
    """Create calls the emulator has served (handled, whatever became of the reply)."""
    return int(emulator_control(vertex, "counts")["requests"].get(route, 0))


@pytest.mark.parametrize("lost", sorted(LOST))
def test_a_pipeline_create_whose_reply_is_lost_ends_as_one_job(
    vertex: str, datasets: dict[str, str], emulator: Emulator, lost: str
) -> None:
    ti = new_ti()
    before = creates(vertex, CREATE_PIPELINE)
    emulator.fault(when="after", method="POST", path="europe-west4/pipelineJobs$", count=1, **LOST[lost])
    # Every lost reply is transient to the hook (`hooks.base.is_transient`: a 503, and a dropped
    # connection on either transport since ef92cef): api-core's Retry repeats the create, Vertex refuses
    # the repeat (409), and the hook re-attaches. The task's own retry re-attaching by run key is
    # test_tuning.py::test_reexecution_after_worker_death_reattaches.
    trigger = submit(tuning_operator(datasets, train_steps=LONG_STEPS), ti)
    assert creates(vertex, CREATE_PIPELINE) == before + 2
    assert [job.name for job in jobs_for(vertex, ti, "europe-west4")] == [trigger.job_name]
    assert trigger.job_name.endswith("-a1")
    emulator.force(trigger.job_name, "succeed")


@pytest.mark.parametrize("lost", sorted(LOST))
def test_a_gemini_create_whose_reply_is_lost_is_not_repeated_and_the_retry_finds_it(
    vertex: str, datasets: dict[str, str], emulator: Emulator, lost: str
) -> None:
    ti = new_ti()
    before = creates(vertex, CREATE_TUNING)
    emulator.fault(when="after", method="POST", path="us-central1/tuningJobs$", count=1, **LOST[lost])
    with pytest.raises(VertexError, match=f"creating tuning job for {GEMINI}") as failed:
        submit(tuning_operator(datasets, GEMINI, epochs=50), ti)
    assert failed.value.resource == f"projects/{airflow_support.PROJECT}/locations/us-central1"
    assert creates(vertex, CREATE_TUNING) == before + 1  # not repeated: a repeat is a second paid run
    landed = jobs_for(vertex, ti, "us-central1", pipeline=False)
    assert len(landed) == 1

    ti.try_number = 2  # the task's retry, on a fresh operator
    trigger = submit(tuning_operator(datasets, GEMINI, epochs=50), ti)
    assert trigger.job_name == landed[0].name
    assert creates(vertex, CREATE_TUNING) == before + 1
    assert [job.name for job in jobs_for(vertex, ti, "us-central1", pipeline=False)] == [trigger.job_name]
    emulator.force(trigger.job_name, "succeed")
