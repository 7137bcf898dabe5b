"""The Composer twin's fixtures: its venv, built once (cached by a stamp under .run/composer-twin/).

`make test` runs every test here; `ARIA_TWIN=off` skips the ones that start a twin (each costs a few
minutes of a real Airflow), e.g. on a machine without PyPI for the first venv build.
"""

from __future__ import annotations

import os

import pytest

from scripts.composer.twin_venv import TwinVenv, ensure_venv


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ARIA_TWIN", "").lower() != "off":
        return
    for item in items:
        if "twin_venv" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="ARIA_TWIN=off: the Composer twin is not started"))


@pytest.fixture(scope="session")
def twin_venv() -> TwinVenv:
    return ensure_venv()
