"""Deploy ARIA-text to a Cloud Composer 3 environment: `make deploy-composer` (README, "Cloud Composer").

aria_tuning goes as a versioned wheel to an Artifact Registry Python repository and is installed as a PyPI
package of the environment (every Airflow component imports it: DAG processor, scheduler, triggerer,
workers, API server); the console-link plugin goes to the bucket's plugins/, the DAG to dags/.

    DRY_RUN=1 COMPOSER_ENV=aria-composer make deploy-composer      # print the plan and the commands
    COMPOSER_ENV=aria-composer make deploy-composer                # run them
    python -m scripts.deploy_composer --target-dir DIR --target-python VENV/bin/python   # a local twin

Settings (environment, or the options below): COMPOSER_ENV (required for Composer), COMPOSER_LOCATION
(europe-west4), GCP_PROJECT (gcloud's project), COMPOSER_AR_REPOSITORY (aria-python),
COMPOSER_AR_LOCATION (COMPOSER_LOCATION), COMPOSER_PYPI_REQUIREMENTS (extra requirements, space
separated), COMPOSER_IMAGE_PACKAGES (a saved `list-packages` output to decide against, in a dry run),
DRY_RUN=1, and the Variables ARIA_PROJECT, ARIA_DATA_BUCKET, ARIA_PIPELINE_ROOT (set when given).
Exit status: 0 deployed (or planned), 2 refused (a requirement conflicts with the image), 1 other errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scripts.composer.decisions import ConflictError
from scripts.composer.deploy import Options, deploy
from scripts.composer.gcloud_target import GcloudTarget
from scripts.composer.image import TARGET_IMAGE
from scripts.composer.local_target import LocalTarget
from scripts.composer.steps import DeployError, Printer, Target

VARIABLES = {
    "aria_project": "ARIA_PROJECT",
    "aria_data_bucket": "ARIA_DATA_BUCKET",
    "aria_pipeline_root": "ARIA_PIPELINE_ROOT",
}


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m scripts.deploy_composer", description=__doc__.splitlines()[0])
    p.add_argument("--environment", default=env("COMPOSER_ENV"))
    p.add_argument("--location", default=env("COMPOSER_LOCATION") or "europe-west4")
    p.add_argument("--project", default=env("GCP_PROJECT") or None)
    p.add_argument(
        "--repository",
        default=env("COMPOSER_AR_REPOSITORY") or "aria-python",
        help="Artifact Registry Python repository the environment installs from",
    )
    p.add_argument("--repository-location", default=env("COMPOSER_AR_LOCATION") or None)
    p.add_argument(
        "--requirement",
        action="append",
        default=(env("COMPOSER_PYPI_REQUIREMENTS") or "").split(),
        help="an extra PyPI requirement (repeatable), checked against the image like the wheel's",
    )
    p.add_argument(
        "--image-packages",
        type=Path,
        default=env("COMPOSER_IMAGE_PACKAGES") or None,
        help="decide against this saved package list (`pip list` / list-packages output)",
    )
    p.add_argument("--dry-run", action="store_true", default=env("DRY_RUN", "0") not in ("", "0"))
    p.add_argument("--target-dir", type=Path, help="deploy to a local twin directory instead of Composer")
    p.add_argument("--target-python", type=Path, help="the local twin's interpreter (with --target-dir)")
    p.add_argument("--dist-dir", type=Path, help="where the wheel is built (default .run/composer/dist)")
    return p


def target_from(args: argparse.Namespace, printer: Printer, work_dir: Path) -> Target:
    if args.target_dir is not None:
        if args.target_python is None:
            raise DeployError("--target-dir needs --target-python (the local environment's interpreter)")
        return LocalTarget(args.target_dir.resolve(), args.target_python, printer, TARGET_IMAGE)
    if not args.environment:
        raise DeployError("set COMPOSER_ENV (or --environment) to the Composer environment name")
    return GcloudTarget(
        environment=args.environment,
        location=args.location,
        project=args.project,
        repository=args.repository,
        repository_location=args.repository_location or args.location,
        printer=printer,
        pip_conf_file=work_dir / "pip.conf",
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    printer = Printer(dry_run=args.dry_run)
    variables = {key: os.environ[name] for key, name in VARIABLES.items() if os.environ.get(name)}
    options = Options(args.dry_run, tuple(args.requirement), args.image_packages, variables=variables)
    if args.dist_dir is not None:
        options = Options(
            args.dry_run, options.requirements, options.image_packages, options.pins, args.dist_dir, variables
        )
    try:
        deploy(target_from(args, printer, options.dist_dir.parent), options, printer)
    except ConflictError as exc:
        print(f"deploy_composer: {exc}", file=sys.stderr)
        return 2
    except DeployError as exc:
        print(f"deploy_composer: {exc}", file=sys.stderr)
        return 1
    printer.note("Dry run: nothing was changed." if args.dry_run else "Deployed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
