"""Changes to a Vertex emulator's clock settings that are undone exactly, whatever the test did.

`GET /_emulator/settings` answers in snake_case (`seconds_per_step`) while `PATCH` takes camelCase
(`secondsPerStep`): restore code that read the answer with the PATCH keys restored defaults of its
own choosing (0.0), and later tests ran on a clock ten times faster than they were written for.
"""

from __future__ import annotations

from typing import Any

from scripts.emulators import emulator_control

#: PATCH key -> the key `GET /_emulator/settings` answers with (vertex_emulator/control.py).
SETTABLE = {
    "secondsPerStep": "seconds_per_step",
    "phaseSeconds": "phase_seconds",
    "pendingSeconds": "pending_seconds",
    "operationSeconds": "operation_seconds",
}


def read(url: str) -> dict[str, Any]:
    """The emulator's settings as it reports them (snake_case keys)."""
    return dict(emulator_control(url, "settings"))


def as_patch(settings: dict[str, Any]) -> dict[str, float]:
    """The PATCH body that puts every settable value back to what `settings` (a `read`) says."""
    return {patch_key: float(settings[key]) for patch_key, key in SETTABLE.items()}


class EmulatorSettings:
    """One emulator's settings for the length of a test: `set()` changes them, `restore()` (the
    fixture's teardown) puts back exactly what was there before the first change."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._saved: dict[str, Any] | None = None

    def set(self, **changes: float) -> dict[str, Any]:
        """PATCH `changes` (camelCase keys, e.g. operationSeconds=1.0); returns the new settings."""
        unknown = set(changes) - set(SETTABLE)
        if unknown:
            raise ValueError(f"unknown emulator settings {sorted(unknown)}; settable: {sorted(SETTABLE)}")
        if self._saved is None:
            self._saved = read(self.url)
        return dict(emulator_control(self.url, "settings", changes, method="PATCH"))

    def restore(self) -> None:
        """Undo every `set()`; raises AssertionError if the emulator then reports anything else."""
        if self._saved is None:
            return
        emulator_control(self.url, "settings", as_patch(self._saved), method="PATCH")
        now = read(self.url)
        assert now == self._saved, f"emulator settings not restored: {now} != {self._saved}"
        self._saved = None
