"""The Composer twin's fixtures: its venv, built once (cached by a stamp under .run/composer-twin/).

`make test` runs the CI subset: the venv's versions against the image list, and the old plugins-folder
layout failing by name. The end-to-end run (8-14 minutes of a real Airflow with two triggerers) is
`make composer-twin` (`ARIA_TWIN=all`). `ARIA_TWIN=off` skips every test that needs the twin's venv.
"""

from __future__ import annotations

import os

import pytest

from scripts.composer.twin_venv import TwinVenv, ensure_venv

#: Tests only `make composer-twin` runs: each is a whole twin environment end to end.
FULL_TWIN_ONLY = ("test_deployed_layout_runs_the_dag_end_to_end_in_every_component",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mode = os.environ.get("ARIA_TWIN", "").lower()
    for item in items:
        if mode == "off" and "twin_venv" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason="ARIA_TWIN=off: the Composer twin is not started"))
        elif mode != "all" and item.name in FULL_TWIN_ONLY:
            item.add_marker(pytest.mark.skip(reason="the twin end to end runs in `make composer-twin`"))


@pytest.fixture(scope="session")
def twin_venv() -> TwinVenv:
    return ensure_venv()
