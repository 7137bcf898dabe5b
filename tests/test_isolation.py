"""The suite's own isolation: what a test changes on the shared emulator or in the environment is undone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.emulator_settings import SETTABLE, EmulatorSettings, as_patch, read

#: Non-default clock settings (the defaults are in vertex_emulator/backend.py `Settings`).
STARTED_WITH = ("--seconds-per-step", "0.02", "--phase-seconds", "0.07", "--operation-seconds", "0.4")


def test_the_settings_answer_is_not_a_patch_body(vertex_emulator_factory: Callable[..., Any]) -> None:
    """GET answers snake_case, PATCH takes camelCase: restore code reading the answer with the PATCH
    keys finds nothing and restores whatever default it supplies (the leak of tests/dags)."""
    emulator = vertex_emulator_factory(extra_args=STARTED_WITH)
    before = read(emulator.url)
    assert not set(SETTABLE) & set(before)
    assert set(SETTABLE.values()) <= set(before)
    naive = {key: before.get(key, 0.0) for key in SETTABLE}  # the old restore code's body
    assert naive == dict.fromkeys(SETTABLE, 0.0) != as_patch(before)


def test_restore_puts_back_exactly_what_was_there(vertex_emulator_factory: Callable[..., Any]) -> None:
    emulator = vertex_emulator_factory(extra_args=STARTED_WITH)
    before = read(emulator.url)
    settings = EmulatorSettings(emulator.url)
    settings.set(secondsPerStep=3.0, operationSeconds=0)
    changed = settings.set(pendingSeconds=9, phaseSeconds=0)
    assert {changed[key] for key in SETTABLE.values()} == {3.0, 0.0, 9.0}
    settings.restore()
    assert read(emulator.url) == before
    assert before["seconds_per_step"] == 0.02 and before["operation_seconds"] == 0.4
