"""The deploy's vocabulary shared by its two targets (a Composer environment through gcloud, a local
twin directory): what an environment looks like when inspected, the error that stops a deploy, and the
printer that shows every command before it runs (or instead of running it, in a dry run).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from scripts.composer.image import ImagePackages
from scripts.composer.wheel import Wheel

#: The bucket folders Composer 3 syncs (README, "Cloud Composer"), and where their files come from.
FOLDERS = ("dags", "plugins", "data")


class DeployError(RuntimeError):
    """A check failed or a step could not run; nothing after it was done."""


@dataclass(frozen=True)
class Environment:
    """What a real (non-dry) run reads before it changes anything."""

    image_version: str
    packages: ImagePackages  # complete: the environment's own list
    custom_packages: Mapping[str, str]  # name -> extras and specifier, as the environment has them now
    bucket: str
    web_url: str | None


@dataclass(frozen=True)
class Upload:
    folder: str  # dags, plugins or data
    source: Path
    destination: str | None = None  # a sub-folder of the bucket folder


class Target(Protocol):
    """One environment the deploy can reach; each step is idempotent and says what it did."""

    @property
    def description(self) -> str: ...

    def inspect(self) -> Environment | None: ...  # None: a dry run, nothing was read

    def check_published(self, wheel: Wheel) -> None: ...  # raises when the version holds other bytes

    def write_pip_conf(self, environment: Environment | None) -> None: ...

    def publish(self, wheel: Wheel) -> None: ...

    def install(self, packages: Mapping[str, str], environment: Environment | None) -> None: ...

    def remove_plugin_folder(self, name: str) -> None: ...

    def upload(self, upload: Upload) -> None: ...

    def set_variable(self, key: str, value: str) -> None: ...

    def finish(self, environment: Environment | None) -> None: ...


@dataclass
class Printer:
    """Prints each command as `+ argv` (runs it unless dry) and notes as `  text`."""

    dry_run: bool
    out: TextIO = field(default_factory=lambda: sys.stdout)

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def command(self, argv: Sequence[str], *, prefix: str = "+") -> None:
        print(f"{prefix} {shlex.join(argv)}", file=self.out, flush=True)

    def run(
        self, argv: Sequence[str], *, read_only: bool, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str] | None:
        """Run `argv` (None in a dry run); a read-only check is shown as `? argv`, a change as `+ argv`."""
        self.command(argv, prefix="?" if read_only else "+")
        if self.dry_run:
            return None
        return subprocess.run(list(argv), capture_output=True, text=True, env=dict(env) if env else None)


def checked(result: subprocess.CompletedProcess[str] | None, what: str) -> str:
    """stdout of a command that must succeed; a failure names the command and its stderr."""
    if result is None:
        return ""
    if result.returncode != 0:
        raise DeployError(
            f"{what} failed (exit {result.returncode}): {shlex.join(result.args)}\n"
            f"{result.stderr.strip()[-1500:]}"
        )
    return result.stdout
