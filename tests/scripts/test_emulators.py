"""`make emulators` / `make emulators-stop` (scripts/emulators.py) and the emulator command line it builds."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from scripts import emulators
from scripts.emulators import emulator_control, vertex_emulator_command
from scripts.processes import free_port
from vertex_emulator import cli


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_records_both_emulators_and_stop_ends_exactly_them(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    gcs_port, vertex_port = free_port(), free_port()
    try:
        assert emulators.start(run_dir, gcs_port, vertex_port) == 0
        recorded = json.loads((run_dir / "emulators.json").read_text())
        assert {name: entry["port"] for name, entry in recorded.items()} == {
            "gcs": gcs_port,
            "vertex": vertex_port,
        }
        health = emulator_control(recorded["vertex"]["url"], "health")
        assert health["settings"]["gcs_endpoint"] == recorded["gcs"]["url"]
        assert health["store"] == str((run_dir / "vertex-state").resolve())
        assert emulators.start(run_dir, gcs_port, vertex_port) == 0  # already running: no second pair
        assert json.loads((run_dir / "emulators.json").read_text()) == recorded
    finally:
        emulators.stop(run_dir)
    assert not any(alive(entry["pid"]) for entry in recorded.values())
    assert not (run_dir / "emulators.json").exists()
    assert emulators.stop(run_dir) == 0  # nothing recorded: nothing to do


def test_the_vertex_emulator_command_line_takes_the_emulator_options(tmp_path: Path) -> None:
    command = vertex_emulator_command(
        9999, gcs_url="http://g", state_dir=tmp_path, extra_args=["--seconds-per-step", "2"]
    )
    assert command[1:3] == ["-m", "vertex_emulator"]
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)  # the parser `python -m vertex_emulator` reads its options with
    args = parser.parse_args(command[3:])
    assert (args.port, args.state_dir, args.seconds_per_step, args.gcs_endpoint) == (
        9999,
        tmp_path,
        2.0,
        "http://g",
    )
