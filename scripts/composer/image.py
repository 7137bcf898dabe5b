"""What a Composer image preinstalls: the vendored list in deploy/composer/ (partial: Google's page could
only be read up to a point), or a full list read from an environment (`pip freeze`, `pip list`).

A partial list is still exact up to where it stops: Google's lists are sorted by name, so a name that sorts
before the last readable one and is not listed is known to be absent; a name after it is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parents[2]
COMPOSER_DIR = REPO / "deploy" / "composer"
#: The image the deploy targets: the newest Composer 3 build with Airflow 3.3.x found (README).
TARGET_IMAGE = "composer-3-airflow-3.3.1-build.10"
VENDORED_LIST = COMPOSER_DIR / f"{TARGET_IMAGE}.txt"

_IMAGE_NAME = re.compile(
    r"^composer-(?P<composer>[\d.]+)-airflow-(?P<airflow>\d+\.\d+\.\d+)(?:-build\.\d+)?$"
)
_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)$")
_COLUMNS = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s+(?P<version>\d\S*)(?:\s+\S.*)?$")


class ImageListError(ValueError):
    """A package list that cannot be read as one."""


@dataclass(frozen=True)
class Preinstalled:
    version: str
    source: str  # where this version was read: the list file, the image name, an environment


@dataclass(frozen=True)
class ImagePackages:
    """Preinstalled packages by canonical name; `readable_until` is the last name of a partial list."""

    image: str
    source: str
    packages: dict[str, Preinstalled] = field(default_factory=dict)
    readable_until: str | None = None  # None: the list is complete

    @property
    def complete(self) -> bool:
        return self.readable_until is None

    def lookup(self, name: str) -> Preinstalled | None:
        """The preinstalled version, or None when the image does not have the package.

        Raises UnknownPackage for a name the partial list does not reach.
        """
        key = canonicalize_name(name)
        if key in self.packages:
            return self.packages[key]
        if self.readable_until is not None and key > self.readable_until:
            raise UnknownPackage(key, self)
        return None


class UnknownPackage(LookupError):
    def __init__(self, name: str, image: ImagePackages):
        super().__init__(
            f"{name} sorts after {image.readable_until}, where the partial list of {image.image} stops"
        )
        self.name = name


def read_vendored(path: Path = VENDORED_LIST) -> ImagePackages:
    """The vendored list: `# key: value` header lines (image, source, complete) and `name==version` lines.

    Airflow's own version comes from the image name when the list does not reach it (apache-airflow
    3.3.1 requires apache-airflow-core==3.3.1, so the name fixes both).
    """
    header: dict[str, str] = {}
    pins: dict[str, Preinstalled] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].strip().partition(":")
            if sep and key.strip() in ("image", "source", "complete", "released", "vendored"):
                header.setdefault(key.strip(), value.strip())
            continue
        match = _PINNED.match(line)
        if not match:
            raise ImageListError(f"{path}:{number}: not `name==version`: {line!r}")
        pins[canonicalize_name(match["name"])] = Preinstalled(match["version"], f"{path.name}")
    missing = {"image", "source", "complete"} - header.keys()
    if missing:
        raise ImageListError(f"{path}: header lacks {', '.join(sorted(missing))}")
    if header["complete"] not in ("yes", "no"):
        raise ImageListError(f"{path}: `complete:` must be yes or no, not {header['complete']!r}")
    image = header["image"]
    for name, version in airflow_from_image_name(image).items():
        pins.setdefault(name, Preinstalled(version, f"the image name {image}"))
    readable_until = (
        max(k for k in pins if pins[k].source == path.name) if header["complete"] == "no" else None
    )
    try:
        shown = str(path.resolve().relative_to(REPO))
    except ValueError:
        shown = str(path)
    return ImagePackages(image, f"{shown} (from {header['source']})", pins, readable_until)


def airflow_from_image_name(image: str) -> dict[str, str]:
    """`composer-3-airflow-3.3.1-build.10` -> apache-airflow and apache-airflow-core 3.3.1."""
    match = _IMAGE_NAME.match(image)
    if not match:
        raise ImageListError(f"{image!r} is not a Composer image name (composer-N-airflow-X.Y.Z-build.B)")
    return {"apache-airflow": match["airflow"], "apache-airflow-core": match["airflow"]}


def parse_package_list(text: str, image: str, source: str) -> ImagePackages:
    """A complete list as `pip freeze` (`name==version`) or `pip list` (columns) prints it.

    `gcloud composer environments list-packages` runs `python -m pip list` on a worker, so its output
    is the second form, headed by `Package Version` and a rule.
    """
    packages: dict[str, Preinstalled] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-e ", "Package ", "---")) or " @ " in line:
            continue
        match = _PINNED.match(line) or _COLUMNS.match(line)
        if not match:
            continue
        try:
            Version(match["version"])
        except InvalidVersion:
            continue
        packages[canonicalize_name(match["name"])] = Preinstalled(match["version"], source)
    if not packages:
        raise ImageListError(f"{source}: no `name==version` or `name version` line in it")
    return ImagePackages(image, source, packages)
