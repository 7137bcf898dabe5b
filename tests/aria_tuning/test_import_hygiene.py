"""Importing the package and its Airflow components loads no Google client library."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.airflow import REPO

# Client libraries only: the empty `google.cloud` namespace package and the provider's metadata
# module (`airflow.providers.google.get_provider_info`) are loaded by `import airflow.sdk` itself,
# through Airflow's provider discovery, so they are not ours to avoid.
FORBIDDEN = ("google.cloud.", "google.api_core", "google.auth", "airflow.providers.google.")
ALLOWED = ("airflow.providers.google.get_provider_info",)

# Every module of the package (found by walking it, so new ones are checked too) and the plugin.
PROBE = f"""
import importlib, json, pkgutil, sys
sys.path.insert(0, {str(REPO / "plugins")!r})
import aria_tuning
names = [m.name for m in pkgutil.walk_packages(aria_tuning.__path__, "aria_tuning.")] + ["aria_tuning_plugin"]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}) and m not in {ALLOWED!r})
print(json.dumps({{"modules": names, "google": loaded}}))
"""


def probe(prelude: str = "") -> dict[str, list[str]]:
    code = PROBE.replace("import aria_tuning\n", f"{prelude}\nimport aria_tuning\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_components_import_no_google_client_library() -> None:
    result = probe()
    assert {"aria_tuning.hooks", "aria_tuning.triggers", "aria_tuning.operators.tuning"} <= set(
        result["modules"]
    )
    assert result["google"] == [], f"Google modules imported at module level: {result['google'][:10]}"


def test_probe_detects_a_google_import() -> None:
    """The check itself works: importing the provider's base hook is seen."""
    assert (
        "airflow.providers.google.common.hooks.base_google"
        in probe("import airflow.providers.google.common.hooks.base_google")["google"]
    )
