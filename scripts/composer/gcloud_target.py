"""A Cloud Composer 3 environment reached through gcloud (and twine, for the Artifact Registry upload).

Every read happens in `inspect`/`check_published`, before any change; every change skips itself when the
environment already has it, so a second run changes nothing.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scripts.composer.image import parse_package_list
from scripts.composer.steps import DeployError, Environment, Printer, Upload, checked
from scripts.composer.wheel import Wheel

#: The user name that goes with a short-lived access token as password, Artifact Registry's "access tokens"
#: method (docs.cloud.google.com/artifact-registry/docs/python/authentication; its details could not be read
#: here: the name is the one Artifact Registry uses for tokens in its other formats).
TOKEN_USER = "oauth2accesstoken"


@dataclass
class GcloudTarget:
    environment: str
    location: str
    project: str | None  # None: gcloud's configured project (read in `inspect`)
    repository: str  # the Artifact Registry Python repository the environment installs from
    repository_location: str
    printer: Printer
    pip_conf_file: Path  # where the pip.conf to upload is written (next to the wheel)
    _project: str = field(default="", init=False)
    _published: bool = field(default=False, init=False)  # check_published found the same bytes

    @property
    def description(self) -> str:
        return f"Composer environment {self.environment} ({self.location})"

    # --- reads ----------------------------------------------------------------------------------

    def _env_args(self) -> list[str]:
        return [self.environment, "--location", self.location, *self._project_args()]

    def _project_args(self) -> list[str]:
        project = self.project or self._project
        return ["--project", project] if project else []

    def _repo_args(self) -> list[str]:
        return [
            "--repository",
            self.repository,
            "--location",
            self.repository_location,
            *self._project_args(),
        ]

    def inspect(self) -> Environment | None:
        """gcloud installed and authenticated, the environment exists, runs Composer 3; its packages."""
        p = self.printer
        if not p.dry_run and shutil.which("gcloud") is None:
            raise DeployError("gcloud is not installed (https://cloud.google.com/sdk/docs/install)")
        accounts = checked(
            p.run(
                ["gcloud", "auth", "list", "--filter=status:ACTIVE", "--format=value(account)"],
                read_only=True,
            ),
            "gcloud auth list",
        )
        if not p.dry_run and not accounts.strip():
            raise DeployError("gcloud is not authenticated: no active account (run `gcloud auth login`)")
        if not self.project:
            found = checked(
                p.run(["gcloud", "config", "get-value", "project"], read_only=True), "gcloud config"
            )
            self._project = found.strip()
            if not p.dry_run and not self._project:
                raise DeployError("no project: set GCP_PROJECT or `gcloud config set project PROJECT`")
        described = checked(
            p.run(
                ["gcloud", "composer", "environments", "describe", *self._env_args(), "--format=json"],
                read_only=True,
            ),
            f"describing {self.description}",
        )
        listed = checked(
            p.run(["gcloud", "composer", "environments", "list-packages", *self._env_args()], read_only=True),
            f"listing the PyPI packages of {self.description}",
        )
        twine = p.run([sys.executable, "-m", "twine", "--version"], read_only=True)
        if twine is not None and twine.returncode != 0:
            raise DeployError(
                f"twine is not installed in {sys.executable}: `pip install twine` (it uploads the wheel)"
            )
        repo_format = checked(
            p.run(
                [
                    "gcloud",
                    "artifacts",
                    "repositories",
                    "describe",
                    self.repository,
                    "--location",
                    self.repository_location,
                    *self._project_args(),
                    "--format=value(format)",
                ],
                read_only=True,
            ),
            f"describing the Artifact Registry repository {self.repository}",
        )
        if p.dry_run:
            return None
        if repo_format.strip().upper() != "PYTHON":
            raise DeployError(
                f"Artifact Registry repository {self.repository} is {repo_format.strip()}, not PYTHON"
            )
        return self._environment(json.loads(described), listed)

    def _environment(self, described: dict, listed: str) -> Environment:
        config = described.get("config", {})
        software = config.get("softwareConfig", {})
        image_version = str(software.get("imageVersion", ""))
        if not image_version.startswith("composer-3"):
            raise DeployError(
                f"{self.description} runs {image_version or 'an unknown image'}, not Composer 3: this deploy "
                "installs aria_tuning as a PyPI package and relies on Composer 3's bucket layout"
            )
        prefix = str(config.get("dagGcsPrefix", ""))
        if not prefix.endswith("/dags"):
            raise DeployError(f"{self.description}: config.dagGcsPrefix {prefix!r} is not gs://BUCKET/dags")
        packages = parse_package_list(listed, image_version, f"list-packages of {self.environment}")
        return Environment(
            image_version=image_version,
            packages=packages,
            custom_packages=dict(software.get("pypiPackages") or {}),
            bucket=prefix.removesuffix("/dags"),
            web_url=config.get("airflowUri"),
        )

    def check_published(self, wheel: Wheel) -> None:
        """The version is absent, or present with the same bytes; anything else must bump the version."""
        p = self.printer
        listed = p.run(
            [
                "gcloud",
                "artifacts",
                "files",
                "list",
                *self._repo_args(),
                f"--package={wheel.name}",
                f"--version={wheel.version}",
                "--format=value(name)",
            ],
            read_only=True,
        )
        if listed is None or listed.returncode != 0 or not listed.stdout.strip():
            return  # not published (a missing version is an error of `files list`, not a state)
        names = [n for n in listed.stdout.split() if n.rsplit("/", 1)[-1].endswith(wheel.path.name)]
        if not names:
            raise DeployError(
                f"{wheel.name} {wheel.version} is already in {self.repository} without "
                f"{wheel.path.name}: bump the version in pyproject.toml"
            )
        with tempfile.TemporaryDirectory() as tmp:
            checked(
                p.run(
                    [
                        "gcloud",
                        "artifacts",
                        "files",
                        "download",
                        names[0],
                        *self._repo_args(),
                        f"--destination={tmp}",
                        f"--local-filename={wheel.path.name}",
                    ],
                    read_only=True,
                ),
                f"downloading the published {wheel.path.name}",
            )
            if not filecmp.cmp(Path(tmp) / wheel.path.name, wheel.path, shallow=False):
                raise DeployError(
                    f"{wheel.name} {wheel.version} in {self.repository} differs from the wheel built now: "
                    "a code change needs a new version in pyproject.toml (Composer never reinstalls a "
                    "version it has)"
                )
        self._published = True

    # --- changes --------------------------------------------------------------------------------

    def index_url(self) -> str:
        project = self.project or self._project or "PROJECT"
        return f"https://{self.repository_location}-python.pkg.dev/{project}/{self.repository}/simple/"

    def pip_conf(self) -> str:
        return f"[global]\nextra-index-url = {self.index_url()}\n"

    def write_pip_conf(self, environment: Environment | None) -> None:
        """The environment's pip reads gs://BUCKET/config/pip/pip.conf (README: Artifact Registry)."""
        bucket = environment.bucket if environment else "gs://BUCKET_OF_THE_ENVIRONMENT"
        target = f"{bucket}/config/pip/pip.conf"
        current = self.printer.run(
            ["gcloud", "storage", "cat", target, *self._project_args()], read_only=True
        )
        if current is not None and current.returncode == 0 and current.stdout == self.pip_conf():
            self.printer.note(f"  {target} already points at {self.index_url()}")
            return
        self.pip_conf_file.parent.mkdir(parents=True, exist_ok=True)
        self.pip_conf_file.write_text(self.pip_conf())
        self.printer.note(f"  {self.pip_conf_file}: {self.pip_conf().strip()!r}")
        command = ["gcloud", "storage", "cp", str(self.pip_conf_file), target, *self._project_args()]
        checked(self.printer.run(command, read_only=False), "uploading pip.conf")

    def publish(self, wheel: Wheel) -> None:
        if self._published:
            self.printer.note(f"  {wheel.path.name} is already in {self.repository} (same bytes)")
            return
        token = self.printer.run(["gcloud", "auth", "print-access-token"], read_only=True)
        env = {
            **os.environ,
            "TWINE_USERNAME": TOKEN_USER,
            "TWINE_PASSWORD": checked(token, "gcloud auth").strip(),
        }
        upload = [
            sys.executable,
            "-m",
            "twine",
            "upload",
            "--non-interactive",
            "--repository-url",
            self.index_url().removesuffix("simple/"),
            str(wheel.path),
        ]
        checked(self.printer.run(upload, read_only=False, env=env), f"uploading {wheel.path.name}")

    def install(self, packages: Mapping[str, str], environment: Environment | None) -> None:
        """`--update-pypi-package` for each package whose spec the environment does not have yet."""
        current = environment.custom_packages if environment else {}
        changes = {name: spec for name, spec in packages.items() if current.get(name) != spec}
        if not changes:
            self.printer.note("  the environment already has these PyPI packages: nothing to update")
            return
        flags = [f"--update-pypi-package={name}{spec}" for name, spec in sorted(changes.items())]
        command = ["gcloud", "composer", "environments", "update", *self._env_args(), *flags]
        # Synchronous: the update rebuilds the images of every component and fails whole on a conflict.
        checked(self.printer.run(command, read_only=False), f"installing PyPI packages in {self.description}")

    def remove_plugin_folder(self, name: str) -> None:
        """Delete the old layout's plugins/<name>: stale code that a component lacking the package would
        import instead (Airflow appends the plugins folder to sys.path, after site-packages)."""
        listed = self.printer.run(
            [
                "gcloud",
                "composer",
                "environments",
                "storage",
                "plugins",
                "list",
                "--environment",
                self.environment,
                "--location",
                self.location,
                *self._project_args(),
            ],
            read_only=True,
        )
        if listed is not None and f"{name}/" not in listed.stdout:
            return
        command = [
            "gcloud",
            "composer",
            "environments",
            "storage",
            "plugins",
            "delete",
            name,
            "--environment",
            self.environment,
            "--location",
            self.location,
            *self._project_args(),
            "--quiet",
        ]
        checked(self.printer.run(command, read_only=False), f"deleting plugins/{name}")

    def upload(self, upload: Upload) -> None:
        command = [
            "gcloud",
            "composer",
            "environments",
            "storage",
            upload.folder,
            "import",
            "--environment",
            self.environment,
            "--location",
            self.location,
            *self._project_args(),
            "--source",
            str(upload.source),
        ]
        if upload.destination:
            command += ["--destination", upload.destination]
        checked(self.printer.run(command, read_only=False), f"uploading {upload.source}")

    def set_variable(self, key: str, value: str) -> None:
        command = [
            "gcloud",
            "composer",
            "environments",
            "run",
            *self._env_args(),
            "variables",
            "set",
            "--",
            key,
            value,
        ]
        checked(self.printer.run(command, read_only=False), f"setting Variable {key}")

    def finish(self, environment: Environment | None) -> None:
        url = environment.web_url if environment else None
        self.printer.note(
            f"Airflow web UI: {url or '(config.airflowUri of the environment, printed by a real run)'}"
        )
