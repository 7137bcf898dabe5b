"""The Composer twin's virtual environment, its "image": Airflow 3.3.1 and the libraries of
deploy/composer/twin-image.txt at the versions of twin-constraints.txt, built once and reused while
neither file (nor the Python version) changes. Before each deploy it is reset to that image, as Composer
builds every update from its base image: whatever an earlier deploy installed is uninstalled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from scripts.composer.image import COMPOSER_DIR, REPO

TWIN_IMAGE = COMPOSER_DIR / "twin-image.txt"
TWIN_CONSTRAINTS = COMPOSER_DIR / "twin-constraints.txt"
DEFAULT_VENV = REPO / ".run" / "composer-twin" / "venv"
STAMP = ".twin-stamp"
IMAGE_LIST = ".image-packages.txt"  # `pip list --format=freeze` right after the image was installed


class TwinVenvError(RuntimeError):
    pass


@dataclass(frozen=True)
class TwinVenv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def airflow(self) -> Path:
        return self.root / "bin" / "airflow"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def site_packages(self) -> Path:
        return Path(self._run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())

    def image_packages(self) -> dict[str, str]:
        """The image's packages by canonical name (as installed, before any deploy)."""
        return _freeze_versions((self.root / IMAGE_LIST).read_text())

    def installed(self) -> dict[str, str]:
        return _freeze_versions(
            self._run("-m", "pip", "list", "--format=freeze", "--disable-pip-version-check")
        )

    def reset_to_image(self) -> list[str]:
        """Uninstall what earlier deploys added; returns their names."""
        added = sorted(set(self.installed()) - set(self.image_packages()))
        if added:
            self._run("-m", "pip", "uninstall", "--yes", "--disable-pip-version-check", *added)
        return added

    def _run(self, *args: str) -> str:
        result = subprocess.run([str(self.python), *args], capture_output=True, text=True, cwd="/")
        if result.returncode != 0:
            raise TwinVenvError(f"{self.python} {' '.join(args)} failed: {result.stderr.strip()[-1500:]}")
        return result.stdout


def _freeze_versions(text: str) -> dict[str, str]:
    versions: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            versions[canonicalize_name(name)] = version
    return versions


def stamp_value(python: str) -> str:
    """What the venv was built from: both files and the interpreter's version."""
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    digest = hashlib.sha256()
    for part in (TWIN_IMAGE.read_bytes(), TWIN_CONSTRAINTS.read_bytes(), version.encode()):
        digest.update(part)
    return digest.hexdigest()


def ensure_venv(root: Path | None = None, python: str | None = None, log=sys.stderr) -> TwinVenv:
    """The twin venv at `root` (ARIA_TWIN_VENV, default .run/composer-twin/venv), (re)built when stale.

    The build needs PyPI (a few minutes the first time); a current stamp means no network at all.
    """
    root = Path(root or os.environ.get("ARIA_TWIN_VENV") or DEFAULT_VENV)
    python = python or os.environ.get("ARIA_TWIN_PYTHON") or shutil.which("python3.11") or "python3.11"
    venv = TwinVenv(root)
    wanted = stamp_value(python)
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text().strip() == wanted and venv.airflow.exists():
        return venv
    print(
        f"Building the Composer twin's venv in {root} (Airflow 3.3.1; needs PyPI) ...", file=log, flush=True
    )
    if root.exists():
        shutil.rmtree(root)
    steps = [
        [python, "-m", "venv", str(root)],
        [
            str(venv.python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(TWIN_IMAGE),
            "-c",
            str(TWIN_CONSTRAINTS),
        ],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, cwd="/")
        if result.returncode != 0:
            raise TwinVenvError(f"building the twin venv failed: {' '.join(step)}\n{result.stderr[-3000:]}")
    (root / IMAGE_LIST).write_text(
        venv._run("-m", "pip", "list", "--format=freeze", "--disable-pip-version-check")
    )
    stamp.write_text(wanted + "\n")
    return venv
