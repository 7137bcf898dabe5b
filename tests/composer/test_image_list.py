"""The vendored package list of the target Composer image: what it says, how far it reaches, and that the
twin's lock agrees with it wherever both name a package (no venv needed)."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts.composer.decisions import read_pins
from scripts.composer.image import (
    TARGET_IMAGE,
    VENDORED_LIST,
    UnknownPackage,
    parse_package_list,
    read_vendored,
)
from scripts.composer.twin_venv import TWIN_CONSTRAINTS


def test_the_vendored_list_names_its_image_source_and_says_it_is_partial() -> None:
    image = read_vendored()
    header = VENDORED_LIST.read_text()
    assert image.image == TARGET_IMAGE == "composer-3-airflow-3.3.1-build.10"
    assert "https://docs.cloud.google.com/composer/docs/versions-packages" in image.source
    assert "# released: 2026-11-20" in header and "# vendored: " in header
    assert not image.complete and image.readable_until == "annotated-types"
    listed = [p for p in image.packages.values() if p.source == VENDORED_LIST.name]
    assert len(listed) == 17
    # Airflow's version is the image name's, not the list's (which stops before it).
    assert image.lookup("apache-airflow").version == "3.3.1"
    assert "image name" in image.lookup("apache-airflow-core").source


def test_lookup_knows_absent_names_before_the_cut_and_nothing_after_it() -> None:
    image = read_vendored()
    assert image.lookup("aiohttp").version == "3.14.5"
    assert image.lookup("aioboto3") is None  # sorts between aiodebug and aiofiles: known absent
    for name in ("rapidfuzz", "google-cloud-aiplatform", "anyio"):
        with pytest.raises(UnknownPackage, match="annotated-types"):
            image.lookup(name)


def test_list_packages_and_freeze_output_parse_to_the_same_versions() -> None:
    columns = "Package    Version\n---------- -------\nRapidFuzz  3.14.6\napache-airflow 3.3.1+composer\n"
    freeze = "rapidfuzz==3.14.6\napache-airflow==3.3.1+composer\n"
    for text in (columns, freeze):
        image = parse_package_list(text, "img", "test")
        assert image.complete and image.lookup("rapidfuzz").version == "3.14.6"
        assert image.lookup("apache_airflow").version == "3.3.1+composer"
        assert image.lookup("numpy") is None


def test_the_twin_lock_carries_the_image_versions_of_every_package_both_name() -> None:
    image = read_vendored()
    lock = read_pins(TWIN_CONSTRAINTS)
    shared = sorted(set(lock) & set(image.packages))
    assert {"apache-airflow", "apache-airflow-core", "aiohttp", "alembic", "annotated-doc"} <= set(shared)
    differ = {
        name: (lock[name], image.packages[name].version)
        for name in shared
        if Version(lock[name]).public != Version(image.packages[name].version).public
    }
    assert not differ, f"twin lock vs {TARGET_IMAGE} (lock, image): {differ}"
    assert canonicalize_name("apache-airflow-task-sdk") in lock and lock["apache-airflow-task-sdk"] == "1.3.1"
