"""Session fixtures: the offline cloud (GCS and Vertex AI emulators) as real local processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.emulators import start_gcs_emulator, start_vertex_emulator
from scripts.processes import Server, free_port
from tests.support import airflow as airflow_support


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
    emulator = start_gcs_emulator(run_dir)
    url = emulator.url
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        emulator.stop()


@pytest.fixture(scope="session")
def vertex_emulator_state_dir(run_dir: Path) -> Path:
    """Where the session's Vertex AI emulator keeps its state (it runs with --state-dir)."""
    return run_dir / "vertex-state"


@pytest.fixture(scope="session")
def vertex_emulator_grpc_port() -> int:
    """The session's Vertex AI emulator also serves gRPC, plain-text, on 127.0.0.1:<this port>."""
    return free_port()


@pytest.fixture(scope="session")
def vertex_emulator(
    gcs_emulator: str, run_dir: Path, vertex_emulator_state_dir: Path, vertex_emulator_grpc_port: int
) -> Iterator[str]:
    """URL of the session's Vertex AI emulator; ARIA_VERTEX_API_ENDPOINT points at it.

    Shared by every test: use unique ids, display names or labels rather than `/_emulator/reset`.
    """
    emulator = start_vertex_emulator(
        run_dir,
        gcs_url=gcs_emulator,
        state_dir=vertex_emulator_state_dir,
        grpc_port=vertex_emulator_grpc_port,
    )
    previous = os.environ.get("ARIA_VERTEX_API_ENDPOINT")
    os.environ["ARIA_VERTEX_API_ENDPOINT"] = emulator.url
    try:
        yield emulator.url
    finally:
        if previous is None:
            os.environ.pop("ARIA_VERTEX_API_ENDPOINT", None)
        else:
            os.environ["ARIA_VERTEX_API_ENDPOINT"] = previous
        emulator.stop()


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
