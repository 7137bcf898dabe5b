"""A local stand-in for a Composer environment, the twin's: a bucket-like directory and a Python repository
next to it, and a virtual environment as the image.

    DIR/bucket/{dags,plugins,data}/     what `gcloud composer environments storage ... import` fills
    DIR/bucket/config/pip/pip.conf      the pip.conf the environment's installs read
    DIR/repository/simple/<name>/       a PEP 503 index (a file: URL pip reads), Artifact Registry's stand-in

Installing runs the venv's pip with that pip.conf and the environment's own versions as constraints, so a
requirement that would move a preinstalled package fails, as Composer's update does.
"""

from __future__ import annotations

import filecmp
import hashlib
import html
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from scripts.composer.image import parse_package_list
from scripts.composer.steps import DeployError, Environment, Printer, Upload, checked
from scripts.composer.wheel import Wheel


@dataclass
class LocalTarget:
    root: Path
    python: Path  # the environment's interpreter (the twin's venv)
    printer: Printer
    image: str

    @property
    def description(self) -> str:
        return f"local environment {self.root} (Python {self.python})"

    @property
    def bucket(self) -> Path:
        return self.root / "bucket"

    @property
    def index(self) -> Path:
        return self.root / "repository" / "simple"

    @property
    def pip_conf_path(self) -> Path:
        return self.bucket / "config" / "pip" / "pip.conf"

    def inspect(self) -> Environment | None:
        if not self.python.exists():
            raise DeployError(f"{self.description}: no interpreter at {self.python}")
        listed = checked(
            self.printer.run([str(self.python), "-m", "pip", "list", "--format=freeze"], read_only=True),
            f"listing the packages of {self.python}",
        )
        if self.printer.dry_run:
            return None
        for folder in ("dags", "plugins", "data"):
            (self.bucket / folder).mkdir(parents=True, exist_ok=True)
        return Environment(
            image_version=self.image,
            packages=parse_package_list(listed, self.image, f"pip list of {self.python}"),
            custom_packages={},
            bucket=str(self.bucket),
            web_url=None,
        )

    def _published_path(self, wheel: Wheel) -> Path:
        return self.index / wheel.name / wheel.path.name

    def check_published(self, wheel: Wheel) -> None:
        published = self._published_path(wheel)
        if published.exists() and not filecmp.cmp(published, wheel.path, shallow=False):
            raise DeployError(
                f"{wheel.name} {wheel.version} in {self.index} differs from the wheel built now: a code "
                "change needs a new version in pyproject.toml (Composer never reinstalls a version it has)"
            )

    def write_pip_conf(self, environment: Environment | None) -> None:
        content = f"[global]\nextra-index-url = {self.index.as_uri()}/\n"
        if self.pip_conf_path.exists() and self.pip_conf_path.read_text() == content:
            self.printer.note(f"  {self.pip_conf_path} already points at {self.index}")
            return
        self.printer.note(f"  write {self.pip_conf_path}: {content.strip()!r}")
        if not self.printer.dry_run:
            self.pip_conf_path.parent.mkdir(parents=True, exist_ok=True)
            self.pip_conf_path.write_text(content)

    def publish(self, wheel: Wheel) -> None:
        published = self._published_path(wheel)
        if published.exists():
            self.printer.note(f"  {published} is already there (same bytes)")
            return
        self.printer.note(f"  copy {wheel.path} -> {published} (and its index.html)")
        if not self.printer.dry_run:
            published.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(wheel.path, published)
            write_project_index(published.parent)

    def install(self, packages: Mapping[str, str], environment: Environment | None) -> None:
        """pip install the packages, every other installed package held at its version (`-c`)."""
        wanted = {canonicalize_name(name) for name in packages}
        held = (
            []
            if environment is None
            else [
                f"{name}=={p.version}"
                for name, p in sorted(environment.packages.packages.items())
                if name not in wanted
            ]
        )
        with tempfile.TemporaryDirectory() as tmp:
            constraints = Path(tmp) / "preinstalled.txt"
            constraints.write_text("\n".join(held) + "\n")
            command = [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-c",
                str(constraints),
            ]
            command += [f"{name}{spec}" for name, spec in sorted(packages.items())]
            env = {**os.environ, "PIP_CONFIG_FILE": str(self.pip_conf_path)}
            checked(self.printer.run(command, read_only=False, env=env), f"installing into {self.python}")

    def remove_plugin_folder(self, name: str) -> None:
        stale = self.bucket / "plugins" / name
        if stale.exists():
            self.printer.note(f"  remove {stale} (the old layout's copy)")
            if not self.printer.dry_run:
                shutil.rmtree(stale)

    def upload(self, upload: Upload) -> None:
        destination = self.bucket / upload.folder / (upload.destination or "") / upload.source.name
        self.printer.note(f"  copy {upload.source} -> {destination}")
        if self.printer.dry_run:
            return
        destination.parent.mkdir(parents=True, exist_ok=True)
        if upload.source.is_dir():
            shutil.copytree(
                upload.source, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(upload.source, destination)

    def set_variable(self, key: str, value: str) -> None:
        # The twin sets its Variables as AIRFLOW_VAR_* in every component's environment instead.
        self.printer.note(f"  Variable {key}: not set in a local environment (use AIRFLOW_VAR_{key.upper()})")

    def finish(self, environment: Environment | None) -> None:
        self.printer.note(f"Local environment ready: {self.bucket}")


def write_project_index(project_dir: Path) -> None:
    """PEP 503 project page: pip reads `index.html` of a file: index directory, not the listing."""
    links = []
    for path in sorted(project_dir.glob("*.whl")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        links.append(f'<a href="{html.escape(path.name)}#sha256={digest}">{html.escape(path.name)}</a><br>')
    body = "\n".join(links)
    (project_dir / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n")
