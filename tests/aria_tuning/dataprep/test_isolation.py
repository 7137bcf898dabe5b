"""Dataset prep is pure library code: importing it loads neither Airflow nor a Google client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def test_dataprep_imports_no_airflow_and_no_google_client() -> None:
    code = (
        f"import sys, json; sys.path.insert(0, {str(PLUGINS)!r}); "
        "import aria_tuning.dataprep, aria_tuning.commands.validate, aria_tuning.commands.plan; "
        "heavy = ('airflow', 'google.cloud.', 'pandas'); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
