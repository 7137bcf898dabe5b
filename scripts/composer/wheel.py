"""The aria-vertex-tuning wheel: built from a clean copy of what it packages, byte for byte the same for the
same sources (so a re-run can tell "already published" from "changed without a version bump").
"""

from __future__ import annotations

import email.parser
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
#: Zip timestamps of every entry (setuptools' bdist_wheel honours it): 1980-01-01, the zip epoch.
SOURCE_DATE_EPOCH = "315532800"


class WheelBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str  # the distribution's canonical name
    version: str
    requires: tuple[Requirement, ...]  # its runtime Requires-Dist (no extras)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def project_version(repo: Path = REPO) -> tuple[str, str]:
    """(name, version) from pyproject.toml, the one place the version is written."""
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    return canonicalize_name(project["name"]), str(project["version"])


def build_wheel(out_dir: Path, repo: Path = REPO) -> Wheel:
    """`pip wheel --no-deps --no-build-isolation` on a copy of pyproject.toml and plugins/aria_tuning.

    A copy, because setuptools writes build/ and *.egg-info next to the sources it builds; and because
    only what is packaged (no __pycache__, no stray files) should decide the wheel's bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aria-wheel-") as tmp:
        source = Path(tmp) / "src"
        (source / "plugins").mkdir(parents=True)
        shutil.copy2(repo / "pyproject.toml", source / "pyproject.toml")
        shutil.copytree(
            repo / "plugins" / "aria_tuning",
            source / "plugins" / "aria_tuning",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        built = Path(tmp) / "dist"
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        result = subprocess.run(
            [*command, "--no-index", "--wheel-dir", str(built), str(source)],
            env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            capture_output=True,
            text=True,
        )
        wheels = sorted(built.glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            raise WheelBuildError(
                f"building the wheel from {repo} failed ({' '.join(command)}):\n{result.stderr[-2000:]}"
            )
        target = out_dir / wheels[0].name
        shutil.copy2(wheels[0], target)
    return read_wheel(target)


def read_wheel(path: Path) -> Wheel:
    """Name, version and runtime requirements from the wheel's METADATA."""
    with zipfile.ZipFile(path) as archive:
        metadata_name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if metadata_name is None:
            raise WheelBuildError(f"{path} has no .dist-info/METADATA")
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    requires = tuple(
        requirement
        for requirement in map(Requirement, metadata.get_all("Requires-Dist") or [])
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""})
    )
    return Wheel(path, canonicalize_name(metadata["Name"]), metadata["Version"], requires)
