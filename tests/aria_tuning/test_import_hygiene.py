"""Importing the package and its Airflow components loads no Google client library."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.airflow import REPO

COMPONENTS = [
    "aria_tuning",
    "aria_tuning.catalog",
    "aria_tuning.vertex_jobs",
    "aria_tuning.quality_score",
    "aria_tuning.hooks",
    "aria_tuning.triggers",
    "aria_tuning.links",
    "aria_tuning.operators.tuning",
    "aria_tuning.operators.registry",
    "aria_tuning.operators.deploy",
    "aria_tuning.operators.quality",
    "aria_tuning_plugin",
]
# Client libraries only: the empty `google.cloud` namespace package and the provider's metadata
# module (`airflow.providers.google.get_provider_info`) are loaded by `import airflow.sdk` itself,
# through Airflow's provider discovery, so they are not ours to avoid.
FORBIDDEN = ("google.cloud.", "google.api_core", "google.auth", "airflow.providers.google.")
ALLOWED = ("airflow.providers.google.get_provider_info",)

PROBE = f"""
import importlib, json, sys
sys.path.insert(0, {str(REPO / "plugins")!r})
for name in {COMPONENTS!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}) and m not in {ALLOWED!r})))
"""


def test_components_import_no_google_client_library() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"Google modules imported at module level: {loaded[:10]}"


def test_probe_detects_a_google_import() -> None:
    """The check itself works: importing the provider hook is seen."""
    probe = PROBE.replace(
        "for name in", "import airflow.providers.google.common.hooks.base_google\nfor name in"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "airflow.providers.google.common.hooks.base_google" in json.loads(
        out.stdout.strip().splitlines()[-1]
    )
