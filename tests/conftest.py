"""Session fixtures: the offline cloud (GCS and Vertex AI emulators) as real local processes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest

from scripts.emulators import start_gcs_emulator, start_vertex_emulator
from scripts.processes import Server
from tests.support import airflow as airflow_support
from tests.support import emulator_settings as settings_support
from tests.support.servers import start_on_free_ports

#: Set by a caller that runs the emulators itself (see `_running_emulators`).
RUNNING_EMULATORS = "ARIA_TEST_RUNNING_EMULATORS"
#: The environment once configured, before any test: the session must end with it unchanged.
_ENVIRONMENT: dict[str, str] = {}
#: Set by Airflow itself, not by a test: its task runner exports the running task's context
#: (task_runner.py `context_to_airflow_vars(..., in_env_var_format=True)`) under `dag.test()`, and
#: the next task run overwrites them.
_AIRFLOW_OWN = ("AIRFLOW_CTX_",)


def pytest_configure(config: pytest.Config) -> None:
    # Airflow reads AIRFLOW_HOME and its settings at import: set them before any test imports it.
    airflow_support.configure_environment()
    _ENVIRONMENT.update(os.environ)
    # Property tests: a modest number of examples keeps them fast; no deadline (the machine is shared,
    # a slow example is not a failure); no example database in the tree (a failure prints its seed).
    hypothesis.settings.register_profile(
        "aria", max_examples=60, deadline=None, database=None, print_blob=True
    )
    # `make mutation`: the same examples on every run (a verdict must not depend on luck), and no
    # shrinking (a mutant only needs to fail, not to fail minimally).
    no_shrink = tuple(p for p in hypothesis.Phase if p is not hypothesis.Phase.shrink)
    hypothesis.settings.register_profile(
        "mutation", parent=hypothesis.settings.get_profile("aria"), derandomize=True, phases=no_shrink
    )
    hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aria"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail a session that leaves the environment changed: every change goes through monkeypatch
    (or `pytest.MonkeyPatch.context()` in wider fixtures), which undoes it."""
    if not _ENVIRONMENT or session.config.option.collectonly:
        return
    changed = sorted(
        key
        for key in set(_ENVIRONMENT) | set(os.environ)
        if _ENVIRONMENT.get(key) != os.environ.get(key) and not key.startswith(_AIRFLOW_OWN)
    )
    if changed:
        session.config.get_terminal_writer().line(
            f"\nERROR: the tests left these environment variables changed: {changed}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session's background processes write their logs and state."""
    return tmp_path_factory.mktemp("run")


def _running_emulators() -> dict[str, Any] | None:
    """Emulators a caller already runs for many short sessions (`make mutation` sets RUNNING_EMULATORS
    to `{"gcs": url, "vertex": url, "vertex_grpc_port": port}`): the session then starts none."""
    text = os.environ.get(RUNNING_EMULATORS)
    return dict(json.loads(text)) if text else None


@pytest.fixture(scope="session")
def gcs_emulator(run_dir: Path) -> Iterator[str]:
    """URL of a GCS emulator process; STORAGE_EMULATOR_HOST points at it for the session."""
    running = _running_emulators()
    emulator = None if running else start_gcs_emulator(run_dir)
    url = str(running["gcs"]) if running else emulator.url  # type: ignore[union-attr]
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("STORAGE_EMULATOR_HOST", url)
            yield url
    finally:
        if emulator is not None:
            emulator.stop()


@pytest.fixture(scope="session")
def vertex_emulator_state_dir(run_dir: Path) -> Path:
    """Where the session's Vertex AI emulator keeps its state (it runs with --state-dir)."""
    return run_dir / "vertex-state"


@pytest.fixture(scope="session")
def _session_vertex(
    gcs_emulator: str, run_dir: Path, vertex_emulator_state_dir: Path
) -> Iterator[tuple[str, int]]:
    """The session's Vertex AI emulator's URL and gRPC port (both picked free, again if one was lost)."""
    running = _running_emulators()
    if running:
        yield str(running["vertex"]), int(running["vertex_grpc_port"])
        return
    emulator, (grpc_port,) = start_on_free_ports(
        lambda ports: start_vertex_emulator(
            run_dir, gcs_url=gcs_emulator, state_dir=vertex_emulator_state_dir, grpc_port=ports[0]
        ),
        count=1,
    )
    try:
        yield emulator.url, grpc_port
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def vertex_emulator_grpc_port(_session_vertex: tuple[str, int]) -> int:
    """The session's Vertex AI emulator also serves gRPC, plain-text, on 127.0.0.1:<this port>."""
    return _session_vertex[1]


@pytest.fixture(scope="session")
def vertex_emulator(_session_vertex: tuple[str, int]) -> Iterator[str]:
    """URL of the session's Vertex AI emulator; ARIA_VERTEX_API_ENDPOINT points at it.

    Shared by every test: use unique ids, display names or labels rather than `/_emulator/reset`,
    and change its clock only through the `emulator_settings` fixture.
    """
    url = _session_vertex[0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ARIA_VERTEX_API_ENDPOINT", url)
        yield url


@pytest.fixture
def emulator_settings(vertex_emulator: str) -> Iterator[settings_support.EmulatorSettings]:
    """The session emulator's clock settings for this test: `.set(operationSeconds=1.0)`; put back
    exactly as they were when the test ends."""
    settings = settings_support.EmulatorSettings(vertex_emulator)
    try:
        yield settings
    finally:
        settings.restore()


@pytest.fixture(autouse=True)
def _session_emulator_settings_unchanged(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves the session emulator's settings changed: later tests would run on its
    clock (jobs meant to last minutes finishing in a fraction of a second)."""
    if "vertex_emulator" not in request.fixturenames:
        yield
        return
    url = request.getfixturevalue("vertex_emulator")
    before = settings_support.read(url)
    yield
    after = settings_support.read(url)
    assert after == before, f"{request.node.nodeid} left the session emulator's settings changed: {after}"


@pytest.fixture
def vertex_emulator_factory(gcs_emulator: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start private Vertex AI emulators: `start(state_dir=None, extra_args=())` -> process handle
    (`.url`, `.restart()`, `.stop()`); all are stopped when the test ends."""
    started: list[Server] = []

    def start(state_dir: Path | None = None, extra_args: tuple[str, ...] = ()) -> Server:
        emulator = start_vertex_emulator(
            tmp_path,
            gcs_url=gcs_emulator,
            state_dir=state_dir,
            extra_args=extra_args,
            name=f"vertex-{len(started)}",
        )
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
