"""The triggers' calls, one by one: the transient-error budget, the jittered delays between retries, and
a call cancelled in flight. No server needed to count retries.

The calls are plain coroutines raising the errors the Google clients raise; the emulator-backed
tests (test_triggers.py) ride the same budget out against real 503s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import random
import re
from collections.abc import Awaitable, Callable

import pytest
from aria_tuning.errors import VertexError
from aria_tuning.triggers import VertexOperationTrigger
from google.api_core import exceptions

Call = Callable[[], Awaitable[object]]


def failing(errors: list[BaseException], then: object = "done") -> tuple[Call, list[int]]:
    """A call that raises `errors` one per call, then returns `then`; and the list of calls made."""
    calls: list[int] = []

    async def call() -> object:
        calls.append(len(calls) + 1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return then

    return call, calls


def trigger(budget: int, poll: float = 0.001, cap: float = 0.002) -> VertexOperationTrigger:
    return VertexOperationTrigger(
        operation_names=["x"], poll_interval=poll, max_poll_interval=cap, transient_error_budget=budget
    )


def retries_logged(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[tuple[int, int, float]]]:
    """The output and (n, budget, delay) of each "transient error n/budget (...); retrying in Ds"
    (the triggers log through Airflow's structlog, to the captured output)."""
    captured = capsys.readouterr()
    text = captured.out + captured.err
    found = re.finditer(r"transient error (\d+)/(\d+) \(.*?\); retrying in ([\d.]+)s", text)
    return text, [(int(m[1]), int(m[2]), float(m[3])) for m in found]


TRANSIENT = [
    exceptions.ServiceUnavailable("503"),
    exceptions.TooManyRequests("429"),
    exceptions.DeadlineExceeded("slow"),
    ConnectionResetError("reset"),
    VertexError("quota", transient=True),
]


@pytest.mark.parametrize("budget", [len(TRANSIENT), len(TRANSIENT) + 3])
def test_transient_errors_are_retried_within_the_budget(
    budget: int, capsys: pytest.CaptureFixture[str]
) -> None:
    call, calls = failing(TRANSIENT)
    assert asyncio.run(trigger(budget)._call("projects/p/x", call)) == "done"
    assert calls == [1, 2, 3, 4, 5, 6]
    text, logged = retries_logged(capsys)
    assert [(n, b) for n, b, _ in logged] == [(n, budget) for n in range(1, 6)]
    assert f"projects/p/x: transient error 1/{budget} (503); retrying in " in text


def test_one_error_past_the_budget_is_raised() -> None:
    call, calls = failing(TRANSIENT)
    with pytest.raises(ConnectionResetError):
        asyncio.run(trigger(3)._call("x", call))
    assert calls == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "error",
    [exceptions.NotFound("gone"), exceptions.PermissionDenied("no"), ValueError("bug"), VertexError("bad")],
)
def test_an_error_that_will_not_pass_is_raised_at_once(error: BaseException) -> None:
    call, calls = failing([error])
    with pytest.raises(type(error)):
        asyncio.run(trigger(10)._call("x", call))
    assert calls == [1]


def test_a_zero_budget_retries_nothing() -> None:
    call, calls = failing([exceptions.ServiceUnavailable("503")])
    with pytest.raises(exceptions.ServiceUnavailable):
        asyncio.run(trigger(0)._call("x", call))
    assert calls == [1]


def test_retry_delays_stay_under_the_doubling_cap(capsys: pytest.CaptureFixture[str]) -> None:
    """Each retry sleeps a random share of min(max_poll_interval, poll_interval x 2^n), as it logs."""
    call, calls = failing([exceptions.ServiceUnavailable("503")] * 4)
    assert asyncio.run(trigger(8, poll=0.05, cap=0.15)._call("x", call)) == "done"
    assert calls == [1, 2, 3, 4, 5]
    _, logged = retries_logged(capsys)
    caps = [min(0.15, 0.05 * 2**n) for n in range(1, 5)]  # 0.1, 0.15, 0.15, 0.15
    assert [n for n, _, _ in logged] == [1, 2, 3, 4]
    # Logged to one decimal: within half a tenth of the cap.
    assert all(0 <= delay <= cap + 0.05 for (_, _, delay), cap in zip(logged, caps, strict=True))


#: A seed whose first three draws are large (0.92, 0.95, 0.89): each delay then shows its cap to one decimal.
SEED = 23


def test_retry_delays_are_full_jitter_of_the_doubling_cap(capsys: pytest.CaptureFixture[str]) -> None:
    """The n-th retry waits uniform(0, min(max_poll_interval, poll_interval x 2^n)): the random source
    seeded, the logged delays are those draws (`random.uniform(0, c)` is `c * random()`)."""
    call, calls = failing([exceptions.ServiceUnavailable("503")] * 3)
    saved = random.getstate()
    try:
        random.seed(SEED)
        assert asyncio.run(trigger(8, poll=0.05, cap=10)._call("projects/p/x", call)) == "done"
    finally:
        random.setstate(saved)
    draws = random.Random(SEED)
    expected = [f"{min(10, 0.05 * 2**n) * draws.random():.1f}" for n in (1, 2, 3)]  # 0.1, 0.2, 0.4
    text, _ = retries_logged(capsys)
    # Whole messages, as structlog writes them: `<time> [warning  ] <message> [<logger>] loc=...`.
    logged = re.findall(r"\] projects/p/x: transient error \d/8 \(503\); retrying in ([\d.]+)s \[", text)
    assert calls == [1, 2, 3, 4] and logged == expected


def test_a_request_cancelled_with_its_caller_leaves_nothing_unretrieved() -> None:
    """Cancelling a trigger mid-call cancels its request too, and whatever the request ends with (cancelled,
    or an error raised while it was being cancelled) is retrieved: asyncio reports nothing, not even when
    the request is garbage-collected."""
    seen: list[str] = []

    async def hangs(ended: asyncio.Event) -> str:
        try:
            await asyncio.sleep(60)
            return "the job"
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            ended.set()

    async def breaks_when_cancelled(ended: asyncio.Event) -> str:
        try:
            await asyncio.sleep(60)
            return "the job"
        except asyncio.CancelledError:
            seen.append("broke")
            raise ConnectionResetError("reset while closing") from None
        finally:
            ended.set()

    async def main() -> list[str]:
        reported: list[str] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reported.append(ctx["message"]))
        for request in (hangs, breaks_when_cancelled):
            ended = asyncio.Event()
            polling = asyncio.ensure_future(trigger(0)._call("a poll", functools.partial(request, ended)))
            await asyncio.sleep(0)  # the request waits for its reply
            polling.cancel("user action")
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await ended.wait()
            await asyncio.sleep(0)  # the request's done callbacks run
            del polling
        gc.collect()  # an exception nobody retrieved is reported when its task is collected
        return reported

    assert asyncio.run(main()) == []
    assert seen == ["cancelled", "broke"]
