#!/usr/bin/env bash
# Deploy ARIA-text to a Cloud Composer 3 environment (Airflow 3.1+): upload dags/, plugins/ and
# include/ to the environment's bucket, install the runtime PyPI packages, set the Variables.
#
#   COMPOSER_ENV=aria-composer COMPOSER_LOCATION=europe-west4 make deploy-composer
#   DRY_RUN=1 COMPOSER_ENV=... make deploy-composer        # print the gcloud commands only
#
# Settings (environment): COMPOSER_ENV (required), COMPOSER_LOCATION (default europe-west4),
# GCP_PROJECT (default: gcloud's current project), and the Airflow Variables the DAG reads:
# ARIA_PROJECT, ARIA_DATA_BUCKET, ARIA_PIPELINE_ROOT (each set only when given).
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

: "${COMPOSER_ENV:?set COMPOSER_ENV to the Composer environment name}"
LOCATION="${COMPOSER_LOCATION:-europe-west4}"
DRY_RUN="${DRY_RUN:-0}"
ENV_ARGS=(--environment "$COMPOSER_ENV" --location "$LOCATION")
PROJECT_ARGS=()
if [[ -n "${GCP_PROJECT:-}" ]]; then PROJECT_ARGS=(--project "$GCP_PROJECT"); fi

run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [[ "$DRY_RUN" != "1" ]]; then "$@"; fi
}

# DAG files go to the bucket's dags/ folder; each import copies one file or one folder.
for path in dags/*.py; do
  run gcloud composer environments storage dags import "${ENV_ARGS[@]}" "${PROJECT_ARGS[@]}" --source "$path"
done
# plugins/aria_tuning becomes plugins/aria_tuning (on sys.path in every Airflow component).
for path in plugins/*/; do
  [[ "$(basename "$path")" == __pycache__ ]] && continue
  run gcloud composer environments storage plugins import "${ENV_ARGS[@]}" "${PROJECT_ARGS[@]}" --source "${path%/}"
done
# include/ (profiles, schemas) goes to data/include, mounted at /home/airflow/gcs/data/include.
# The sample dataset stays behind: real dataset versions live in the data bucket.
for path in include/*; do
  [[ "$(basename "$path")" == sample_data ]] && continue
  run gcloud composer environments storage data import "${ENV_ARGS[@]}" "${PROJECT_ARGS[@]}" \
    --source "$path" --destination include
done

# Runtime packages: requirements.txt without Airflow itself and its Google provider, whose versions
# the Composer image fixes (Composer refuses to reinstall apache-airflow).
pypi_file="$(mktemp)"
trap 'rm -f "$pypi_file"' EXIT
grep -Ev '^\s*(#|$|apache-airflow==|apache-airflow-providers-google==)' requirements.txt > "$pypi_file"
echo "# PyPI packages for Composer ($pypi_file):"; sed 's/^/#   /' "$pypi_file"
run gcloud composer environments update "$COMPOSER_ENV" --location "$LOCATION" "${PROJECT_ARGS[@]}" \
  --update-pypi-packages-from-file "$pypi_file"

# Airflow Variables read by the DAG at run time (templates), never at parse time.
for pair in "aria_project:${ARIA_PROJECT:-}" "aria_data_bucket:${ARIA_DATA_BUCKET:-}" \
            "aria_pipeline_root:${ARIA_PIPELINE_ROOT:-}"; do
  key="${pair%%:*}"; value="${pair#*:}"
  [[ -z "$value" ]] && continue
  run gcloud composer environments run "$COMPOSER_ENV" --location "$LOCATION" "${PROJECT_ARGS[@]}" \
    variables set -- "$key" "$value"
done
echo "Deployed to Composer environment $COMPOSER_ENV ($LOCATION)$([[ $DRY_RUN == 1 ]] && echo ' [dry run]')."
