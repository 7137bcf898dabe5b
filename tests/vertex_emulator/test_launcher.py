"""`make emulators` / `make emulators-stop` (the launcher) and the `vertex-tuning emulator` entry."""

from __future__ import annotations

import json
import os
from pathlib import Path

from aria_tuning.cli import build_parser

from tests.support.processes import emulator_control, free_port
from vertex_emulator import launcher


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
        assert launcher.start(run_dir, gcs_port, vertex_port) == 0
        recorded = json.loads((run_dir / "emulators.json").read_text())
        assert {name: entry["port"] for name, entry in recorded.items()} == {
            "gcs": gcs_port,
            "vertex": vertex_port,
        }
        health = emulator_control(recorded["vertex"]["url"], "health")
        assert health["settings"]["gcs_endpoint"] == recorded["gcs"]["url"]
        assert health["store"] == str((run_dir / "vertex-state").resolve())
        assert launcher.start(run_dir, gcs_port, vertex_port) == 0  # already running: no second pair
        assert json.loads((run_dir / "emulators.json").read_text()) == recorded
    finally:
        launcher.stop(run_dir)
    assert not any(alive(entry["pid"]) for entry in recorded.values())
    assert not (run_dir / "emulators.json").exists()
    assert launcher.stop(run_dir) == 0  # nothing recorded: nothing to do


def test_vertex_tuning_emulator_subcommand_takes_the_emulator_options(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "emulator",
            "--port",
            "9999",
            "--state-dir",
            str(tmp_path),
            "--seconds-per-step",
            "2",
            "--gcs-endpoint",
            "http://g",
        ]
    )
    assert (args.port, args.state_dir, args.seconds_per_step, args.gcs_endpoint) == (
        9999,
        tmp_path,
        2.0,
        "http://g",
    )
