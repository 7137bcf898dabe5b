"""`make deploy-composer`: the dry run prints the checks, the install and the uploads and runs none of
them; a requirement that conflicts with a preinstalled version is refused before anything is touched.

No gcloud is reachable here: every run gets a PATH with nothing on it, so a dry run or a refusal that
called gcloud (or any other program by name) would fail instead of passing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from scripts.composer.local_target import LocalTarget
from scripts.composer.steps import DeployError, Printer
from scripts.composer.wheel import build_wheel
from tests.support.airflow import REPO

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
#: A complete package list (`pip list` output, as list-packages prints it) of an image that has
#: everything aria_tuning needs except rapidfuzz and matplotlib.
FULL_LIST = """Package                          Version
-------------------------------- --------------
apache-airflow                   3.3.1+composer
apache-airflow-core              3.3.1+composer
apache-airflow-providers-google  22.8.0
google-cloud-aiplatform          2.7.0
google-cloud-storage             3.17.1
msgspec                          0.22.0
"""


def deploy(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty-path"
    empty.mkdir(exist_ok=True)
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("COMPOSER_", "ARIA_", "GCP_", "DRY_RUN"))
    }
    return subprocess.run(
        [sys.executable, "-m", "scripts.deploy_composer", "--dist-dir", str(tmp_path / "dist"), *args],
        env={**base, "PATH": str(empty), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def changes(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("+ ")]


def test_dry_run_prints_checks_install_and_uploads_in_order(tmp_path: Path) -> None:
    done = deploy(
        tmp_path,
        DRY_RUN="1",
        COMPOSER_ENV="aria-composer",
        ARIA_PROJECT="my-project",
        ARIA_DATA_BUCKET="my-data",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    checks = [line for line in out.splitlines() if line.startswith("? ")]
    for check in (
        "gcloud auth list",
        "gcloud composer environments describe aria-composer",
        "gcloud composer environments list-packages aria-composer",
        f"gcloud artifacts files list --repository aria-python --location europe-west4 "
        f"--package=aria-vertex-tuning --version={VERSION}",
    ):
        assert any(check in line for line in checks), (check, checks)
    made = changes(out)
    wheel = f"aria_vertex_tuning-{VERSION}-py3-none-any.whl"
    expected = [
        "gcloud storage cp",  # pip.conf pointing at the Artifact Registry index
        "twine upload --non-interactive --repository-url "
        "https://europe-west4-python.pkg.dev/PROJECT/aria-python/ ",
        f"gcloud composer environments update aria-composer --location europe-west4 "
        f"--update-pypi-package=aria-vertex-tuning=={VERSION}",
        "storage plugins import --environment aria-composer --location europe-west4 --source "
        f"{REPO / 'plugins' / 'aria_tuning_plugin.py'}",
        f"storage dags import --environment aria-composer --location europe-west4 --source "
        f"{REPO / 'dags' / 'aria_text_tuning.py'}",
        "variables set -- aria_project my-project",
        "variables set -- aria_data_bucket my-data",
    ]
    positions = [next((i for i, line in enumerate(made) if text in line), -1) for text in expected]
    assert -1 not in positions, [e for e, p in zip(expected, positions, strict=True) if p == -1]
    # The package is installed before the DAG lands (the DAG processor parses what it imports).
    assert positions == sorted(positions), made
    assert any(wheel in line for line in made if "twine upload" in line)
    # Only our package and what the image lacks: no exact pin of anything the image preinstalls, and
    # the old layout's package folder is never uploaded to plugins/.
    update = next(line for line in made if "environments update" in line)
    assert update.count("--update-pypi-package") == 1, update
    assert not any(line.endswith(str(REPO / "plugins" / "aria_tuning")) for line in made)
    assert "sample_data" not in out
    # The vendored list is partial: the dry run says which requirements it cannot decide, and how a
    # real run decides them.
    assert "PARTIAL: readable up to annotated-types" in out
    assert "UNKNOWN" in out and "gcloud composer environments list-packages" in out
    assert "preinstalled apache-airflow 3.3.1" in out
    assert "Dry run: nothing was changed." in out


def test_requires_an_environment_name(tmp_path: Path) -> None:
    done = deploy(tmp_path, DRY_RUN="1", COMPOSER_ENV="")
    assert done.returncode == 1 and "COMPOSER_ENV" in done.stderr


def test_a_real_run_stops_at_its_first_check_when_gcloud_is_missing(tmp_path: Path) -> None:
    done = deploy(tmp_path, COMPOSER_ENV="aria-composer")  # not a dry run; PATH has no gcloud
    assert done.returncode == 1, done.stdout + done.stderr
    assert "gcloud is not installed" in done.stderr
    assert not changes(done.stdout) and "? " not in done.stdout


def test_refuses_a_requirement_that_conflicts_with_the_vendored_list(tmp_path: Path) -> None:
    done = deploy(
        tmp_path,
        "--requirement",
        "aiohttp==3.13.0",
        "--requirement",
        "aiofiles>=24",
        COMPOSER_ENV="aria-composer",
    )  # not a dry run: the refusal comes first
    assert done.returncode == 2, done.stdout + done.stderr
    assert "aiohttp==3.13.0" in done.stderr and "aiohttp==3.14.5" in done.stderr
    assert "composer-3-airflow-3.3.1-build.10" in done.stderr
    assert "aiofiles" not in done.stderr  # satisfied by the preinstalled 25.1.0: not a conflict
    assert not changes(done.stdout) and "? " not in done.stdout  # refused before any check or change


def test_refuses_a_wheel_requirement_that_conflicts_with_the_environment_list(tmp_path: Path) -> None:
    listed = tmp_path / "list-packages.txt"
    listed.write_text(
        FULL_LIST.replace("google-cloud-aiplatform          2.7.0", "google-cloud-aiplatform 2.5.0")
    )
    done = deploy(tmp_path, "--image-packages", str(listed), DRY_RUN="1", COMPOSER_ENV="aria-composer")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "google-cloud-aiplatform>=2.7.0" in done.stderr and "google-cloud-aiplatform==2.5.0" in done.stderr
    assert f"required by aria-vertex-tuning {VERSION}" in done.stderr
    assert not changes(done.stdout)


def test_a_complete_list_installs_exactly_our_package_and_what_the_image_lacks(tmp_path: Path) -> None:
    listed = tmp_path / "list-packages.txt"
    listed.write_text(FULL_LIST)
    done = deploy(tmp_path, "--image-packages", str(listed), DRY_RUN="1", COMPOSER_ENV="aria-composer")
    assert done.returncode == 0, done.stderr
    assert "UNKNOWN" not in done.stdout
    update = next(line for line in changes(done.stdout) if "environments update" in line)
    flags = sorted(part for part in update.split() if part.startswith("--update-pypi-package="))
    # matplotlib and rapidfuzz at the twin lock's versions (deploy/composer/twin-constraints.txt).
    assert flags == [
        f"--update-pypi-package=aria-vertex-tuning=={VERSION}",
        "--update-pypi-package=matplotlib==3.11.2",
        "--update-pypi-package=rapidfuzz==3.14.6",
    ]


def test_the_wheel_holds_aria_tuning_only_and_is_reproducible(tmp_path: Path) -> None:
    first, second = build_wheel(tmp_path / "a"), build_wheel(tmp_path / "b")
    assert first.sha256 == second.sha256
    assert (first.name, first.version) == ("aria-vertex-tuning", VERSION)
    names = zipfile.ZipFile(first.path).namelist()
    assert "aria_tuning/triggers.py" in names
    assert all(n.startswith(("aria_tuning/", f"aria_vertex_tuning-{VERSION}.dist-info/")) for n in names), (
        names
    )
    assert not any("vertex_emulator" in n or "aria_tuning_plugin" in n for n in names)


def test_a_changed_wheel_under_a_published_version_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    target = LocalTarget(
        tmp_path / "env", Path(sys.executable), Printer(dry_run=False), "composer-3-airflow-3.3.1-build.10"
    )
    target.publish(wheel)
    target.check_published(wheel)  # the same bytes: already published, nothing to do
    published = tmp_path / "env" / "repository" / "simple" / wheel.name / wheel.path.name
    published.write_bytes(published.read_bytes() + b"\0")
    with pytest.raises(DeployError, match=r"needs a new version in pyproject\.toml"):
        target.check_published(wheel)
