"""What the deploy asks Composer to install: each requirement is left to the image (a preinstalled version
satisfies it), installed at the tested pin (the image lacks it), refused (a preinstalled version conflicts:
Composer would fail the update, or move a package the image depends on), or unknown (a partial list).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts.composer.image import ImagePackages, UnknownPackage


class Action(enum.Enum):
    PREINSTALLED = "preinstalled"  # the image's version satisfies it: nothing to install
    INSTALL = "install"  # the image lacks it: install the tested pin
    REFUSE = "refuse"  # the image's version conflicts with it
    UNKNOWN = "unknown"  # beyond a partial list: decided by the environment's own list


@dataclass(frozen=True)
class Decision:
    requirement: Requirement
    required_by: str
    action: Action
    install: str | None = None  # `name==version` to install (INSTALL; the pin UNKNOWN would install)
    preinstalled: str | None = None
    detail: str = ""

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    def line(self) -> str:
        """One line of the plan as the deploy prints it."""
        head = f"{self.requirement} ({self.required_by})"
        if self.action is Action.PREINSTALLED:
            return f"{head}: preinstalled {self.name} {self.preinstalled} ({self.detail}): nothing to install"
        if self.action is Action.INSTALL:
            return f"{head}: not preinstalled ({self.detail}): install {self.install}"
        if self.action is Action.UNKNOWN:
            return f"{head}: UNKNOWN, {self.detail}; if the environment lacks it: install {self.install}"
        return f"{head}: REFUSED, {self.detail}"


class ConflictError(RuntimeError):
    """Requirements that conflict with the image: raised before anything touches the environment."""

    def __init__(self, image: ImagePackages, refused: list[Decision]):
        lines = "\n".join(f"  - {d.line()}" for d in refused)
        super().__init__(
            f"refusing to deploy to {image.image}: {len(refused)} requirement(s) conflict with "
            f"preinstalled packages; Composer would fail the update or move a package its own software "
            f"needs:\n{lines}\nChange the requirement (pyproject.toml or --requirement) to accept the "
            "preinstalled version, test that version in the Composer twin (deploy/composer/"
            "twin-constraints.txt), or target another image."
        )
        self.refused = refused


class NoTestedPinError(RuntimeError):
    """No tested version to install for a requirement the image lacks."""


def read_pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a constraints file, by canonical name (the versions we tested)."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def decide(
    requirements: Iterable[tuple[Requirement, str]],
    image: ImagePackages,
    pins: Mapping[str, str],
    pins_source: str,
) -> list[Decision]:
    """One decision per (requirement, who requires it)."""
    return [_decide(req, by, image, pins, pins_source) for req, by in requirements]


def _decide(
    req: Requirement, by: str, image: ImagePackages, pins: Mapping[str, str], pins_source: str
) -> Decision:
    name = canonicalize_name(req.name)
    try:
        found = image.lookup(name)
    except UnknownPackage as unknown:
        return Decision(req, by, Action.UNKNOWN, _pin(req, pins, pins_source), detail=str(unknown))
    if found is None:
        where = f"absent from {image.source}" + (
            "" if image.complete else f", which is complete up to {image.readable_until}"
        )
        return Decision(req, by, Action.INSTALL, _pin(req, pins, pins_source), detail=where)
    if req.specifier.contains(Version(found.version), prereleases=True):
        return Decision(req, by, Action.PREINSTALLED, preinstalled=found.version, detail=found.source)
    return Decision(
        req,
        by,
        Action.REFUSE,
        preinstalled=found.version,
        detail=f"{image.image} preinstalls {name}=={found.version} ({found.source}), which `{req}` excludes",
    )


def _pin(req: Requirement, pins: Mapping[str, str], pins_source: str) -> str:
    """What to install for a requirement the image lacks: the tested version, never "whatever is newest"."""
    name = canonicalize_name(req.name)
    exact = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    version = exact[0] if exact else pins.get(name)
    if version is None:
        raise NoTestedPinError(f"{req}: the image lacks it and {pins_source} pins no version of {name}")
    if not req.specifier.contains(Version(version), prereleases=True):
        raise NoTestedPinError(f"{req}: the tested pin {name}=={version} ({pins_source}) does not satisfy it")
    return f"{name}=={version}"


def refused(decisions: Iterable[Decision]) -> list[Decision]:
    return [d for d in decisions if d.action is Action.REFUSE]


def to_install(decisions: Iterable[Decision]) -> list[str]:
    """The `name==version` lines of the packages the image lacks, once each, sorted."""
    return sorted({d.install for d in decisions if d.action is Action.INSTALL and d.install})
