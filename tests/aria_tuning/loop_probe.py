"""Run one serialized trigger in a fresh interpreter, as the triggerer's runner would, and report what
held its event loop: steps that computed too long, and blocking I/O done on the loop's thread.

    python -m tests.aria_tuning.loop_probe '<json: [classpath, kwargs]>' [limit_seconds]

A fresh process on purpose: the first trigger a triggerer runs pays for the first imports of the Google
clients, the credentials and the first channel; a process that already ran other tests has paid for them.
Prints one JSON object on its last line:

    {"event": {...},            # the trigger's first event
     "import_cpu": 0.04,        # CPU seconds of importing the trigger's class (the triggerer does it on
                                #   its loop, in TriggerRunner.create_triggers)
     "busy": [...],             # loop steps of run() whose CPU time exceeded the limit
     "blocking_io": [...],      # files opened (imports, reads), blocking sockets and DNS on the loop thread
     "slow": [...]}             # asyncio debug mode's own slow-callback report (wall clock)

Wall clock alone cannot tell a step that held the loop from one the OS descheduled on a busy machine,
so the CPU time of each step and the I/O on the loop's thread (audit hooks) are what a test asserts;
asyncio's wall-clock report comes along to say where.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import sys
import threading
import time
from typing import Any

#: asyncio's own report (asyncio/base_events.py, `_run_once`): "Executing <Handle ...> took 0.312 seconds".
_SLOW = re.compile(r"Executing (?P<what>.*) took (?P<seconds>[0-9.]+) seconds", re.S)


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _SLOW.search(record.getMessage())
        if match:
            self.found.append({"seconds": float(match["seconds"]), "what": match["what"][:300]})


class _LoopWatch:
    """CPU time of every loop step, and blocking I/O on the loop's thread while `watching`."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.watching = False
        self.busy: list[dict[str, Any]] = []
        self.blocking_io: list[str] = []
        self._loop_thread: int | None = None
        self._in_step = False

    def install(self) -> None:
        original = asyncio.events.Handle._run
        watch = self

        def timed_run(handle: asyncio.Handle) -> None:
            watch._loop_thread = threading.get_ident()
            watch._in_step = True
            started = time.thread_time()
            try:
                original(handle)
            finally:
                watch._in_step = False
                cpu = time.thread_time() - started
                if watch.watching and cpu > watch.limit:
                    watch.busy.append({"cpu_seconds": round(cpu, 3), "what": repr(handle)[:300]})

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if not (self.watching and self._in_step and threading.get_ident() == self._loop_thread):
            return
        if event == "open":
            # Python sources are read through linecache for tracebacks and log call sites (debug mode,
            # structlog), once per file; an import opens the .pyc (or a .so), a read opens its file.
            if not str(args[0]).endswith(".py"):
                self.blocking_io.append(f"open {args[0]}")
        elif event == "socket.getaddrinfo":
            self.blocking_io.append(f"getaddrinfo {args[0]}:{args[1]}")
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            sock = args[0]
            if isinstance(sock, socket.socket) and sock.getblocking():
                self.blocking_io.append(f"{event} (blocking socket) {args[1] if len(args) > 1 else ''}")


async def _watchdog(late: list[float], period: float = 0.1) -> None:
    """What the triggerer itself runs (TriggerRunner.block_watchdog): sleep `period`, note how late it
    woke. It also sees a loop thread starved of the GIL between callbacks, which no callback's time shows."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(period)
        late.append(loop.time() - before - period)


async def _probe(classpath: str, kwargs: dict[str, Any], watch: _LoopWatch) -> dict[str, Any]:
    from airflow.sdk._shared.module_loading import import_string

    asyncio.get_running_loop().slow_callback_duration = watch.limit
    started = time.thread_time()
    trigger_class = import_string(classpath)
    import_cpu = time.thread_time() - started
    await asyncio.sleep(0)  # the triggerer creates triggers and runs them in separate loop steps
    trigger = trigger_class(**kwargs)
    late: list[float] = []
    watchdog = asyncio.ensure_future(_watchdog(late))
    watch.watching = True
    try:
        async for event in trigger.run():
            return {
                "event": dict(event.payload),
                "import_cpu": round(import_cpu, 3),
                "watchdog_late": round(max(late, default=0.0), 3),
            }
    finally:
        watch.watching = False
        watchdog.cancel()
    raise RuntimeError(f"{classpath} ended without an event")


def main(argv: list[str]) -> int:
    # What a triggerer has imported before it runs any trigger: Airflow itself and BaseTrigger.
    import airflow.sdk._shared.module_loading
    import airflow.triggers.base  # noqa: F401

    classpath, kwargs = json.loads(argv[0])
    limit = float(argv[1]) if len(argv) > 1 else 0.1
    slow = _SlowCallbacks()
    logging.getLogger("asyncio").addHandler(slow)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
    watch = _LoopWatch(limit)
    watch.install()
    report = asyncio.run(asyncio.wait_for(_probe(classpath, kwargs, watch), 120), debug=True)
    report.update(busy=watch.busy, blocking_io=watch.blocking_io, slow=slow.found)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
