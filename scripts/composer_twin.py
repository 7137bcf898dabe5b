"""Run the Composer twin once and print what it proved (scripts/composer/twin.py says what it is).

    python -m scripts.composer_twin                  # deploy as the deploy does, backfill two versions
    python -m scripts.composer_twin --layout plugins # the old layout: fails, naming component and module

`make composer-twin` runs the twin's tests (tests/composer), which use the same pieces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from scripts.composer.component_imports import ComponentImportError
from scripts.composer.twin import LAYOUTS, VISIBLE, ComposerTwin
from scripts.composer.twin_scenario import run_backfill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.composer_twin", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--layout", choices=LAYOUTS, default="wheel")
    parser.add_argument("--base", type=Path, help="where the twin keeps its state (default: a temp dir)")
    args = parser.parse_args(argv)
    base = args.base or Path(tempfile.mkdtemp(prefix="aria-composer-twin-"))
    twin = ComposerTwin(base, layout=args.layout)
    started = time.monotonic()
    try:
        twin.start()
        print(
            f"Composer twin up ({args.layout} layout) in {time.monotonic() - started:.0f}s: {twin.api_url}, "
            f"logs in {twin.logs}",
            flush=True,
        )
        twin.wait_dag_or_import_failure()
        for component in VISIBLE:
            found = twin.probe_import(component)
            print(f"  {component}: aria_tuning.triggers from {found['file']}")
        for line in run_backfill(twin).lines():
            print(line)
    except ComponentImportError as exc:
        print(f"composer_twin: {exc}", file=sys.stderr)
        return 1
    finally:
        twin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
