"""ARIA-text: weekly supervised tuning of the team's LLM on Vertex AI, from one dataset version.

Wiring, params, schedule and docs only: the logic lives in `aria_tuning` (plugins/). Nothing here
reads a Variable, a connection or the network at parse time; project, region and buckets are
templates resolved when a task runs.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import DAG, Asset, Param, chain, task
from aria_tuning import promotion
from aria_tuning.catalog import DEFAULT_MODEL, model_names, price_guide
from aria_tuning.operators.deploy import DeployModelOperator
from aria_tuning.operators.quality import QualityGateOperator
from aria_tuning.operators.registry import RegisterModelOperator
from aria_tuning.operators.rollout import CanaryRolloutOperator
from aria_tuning.operators.teardown import CleanUpTuningOutputsOperator, TearDownEndpointOperator
from aria_tuning.operators.tuning import VertexTuningOperator
from aria_tuning.run_params import add_examples, log_params_used_by, params_in_templates
from aria_tuning.sensors import DatasetVersionSensor
from aria_tuning.timetables import BackfillOnlyTimetable

DAG_ID = "aria_text_tuning"

# Parse-time settings that are not cloud locations: how often to run and how fast to poll.
# "none" turns the schedule off (manual runs only, no backfill); "backfill" keeps the weekly intervals for
# backfills and manual runs but starts no run by itself, as `make up` does by default.
_schedule = os.environ.get("ARIA_TUNING_SCHEDULE", "@weekly")
if _schedule.lower() in ("", "none"):
    SCHEDULE: object = None
elif _schedule.lower() == "backfill":
    SCHEDULE = BackfillOnlyTimetable("@weekly", "UTC")
else:
    SCHEDULE = _schedule
CATCHUP = os.environ.get("ARIA_TUNING_CATCHUP", "false").lower() == "true"
UPLOAD_INACTIVITY_SECONDS = float(os.environ.get("ARIA_UPLOAD_INACTIVITY_SECONDS", "600"))
SENSOR_POKE_SECONDS = float(os.environ.get("ARIA_SENSOR_POKE_SECONDS", "60"))
VERTEX_POLL_SECONDS = float(os.environ.get("ARIA_VERTEX_POLL_SECONDS", "60"))
RETRY_DELAY = dt.timedelta(seconds=float(os.environ.get("ARIA_RETRY_DELAY_SECONDS", "300")))
# The default soak of each canary step (the `canary_soak_seconds` param): 30 minutes of real traffic.
CANARY_SOAK_SECONDS = int(os.environ.get("ARIA_CANARY_SOAK_SECONDS", "1800"))

# Run-time configuration: Airflow Variables, with the defaults that make the emulators work.
PROJECT = "{{ var.value.get('aria_project', 'aria-local') }}"
PIPELINE_ROOT = "{{ var.value.get('aria_pipeline_root', 'gs://aria-pipeline-root') }}"


def xcom(task_id: str, *keys: str) -> str:
    """A template for the XCom of `task_id`, or one value inside it (rendered when the task runs)."""
    path = "".join(f"[{key!r}]" for key in keys)
    return f"{{{{ ti.xcom_pull(task_ids={task_id!r}){path} }}}}"


def optional_xcom(task_id: str, key: str) -> str:
    """A template for one value of the XCom of `task_id`, None when the task returned nothing."""
    return f"{{{{ (ti.xcom_pull(task_ids={task_id!r}) or {{}}).get({key!r}) }}}}"


PREPARED_DATASET = Asset(name="aria_text_prepared_dataset", uri="x-aria://aria-text/prepared-dataset")
TUNED_MODEL = Asset(name="aria_text_tuned_model", uri="x-aria://aria-text/tuned-model")

PARAMS = {
    "dataset_uri": Param(
        None,
        type=["null", "string"],
        pattern=r"^gs://[a-z0-9][a-z0-9._-]{1,220}/.*$",
        title="Dataset URI override",
        description="Empty: the run's own version, gs://<aria_data_bucket>/<aria_dataset_prefix>/raw/"
        "v=<logical date>/. Or the folder of raw files to train on: gs://, a bucket name (lowercase "
        "letters, digits, '.', '_', '-'), '/', then the folder, for example "
        "gs://aria-datasets/aria-text/raw/v=2025-06-01/ (anything else is refused by the form's "
        "pattern check).",
    ),
    "base_model": Param(
        DEFAULT_MODEL,
        type="string",
        enum=model_names(),
        title="Base model",
        description=f"For example {DEFAULT_MODEL} (the default: tunable on Vertex today). text-bison "
        "models are tuned by the tune-large-model pipeline (retired by Google: kept to reproduce older "
        f"runs); Gemini models by a Vertex tuning job. Time and money: {price_guide()}",
    ),
    "accelerator": Param(
        "TPU",
        type="string",
        enum=["TPU", "GPU"],
        title="Accelerator",
        description="text-bison only, for example TPU. TPU: v3 pod, 64 cores, europe-west4. GPU: 8 x "
        "A100 80GB, us-central1. Gemini: Vertex chooses the hardware.",
    ),
    "epochs": Param(
        3,
        type="integer",
        minimum=1,
        maximum=20,
        title="Epochs",
        description="Passes over the training split, a whole number from 1 to 20, for example 3; "
        "text-bison's train steps are computed from it.",
    ),
    "train_steps": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=20000,
        title="Train steps override",
        description="text-bison only: 1 to 20000, for example 500. Empty: ceil(epochs x train "
        "examples / batch size).",
    ),
    "batch_size": Param(
        None,
        type=["null", "integer"],
        minimum=1,
        maximum=1024,
        title="Batch size override",
        description="text-bison only: 1 to 1024, for example 24. Empty: the documented batch size of "
        "the accelerator and region (24 on TPU, 8 on GPU).",
    ),
    "learning_rate_multiplier": Param(
        1.0,
        type="number",
        exclusiveMinimum=0,
        maximum=10,
        title="Learning-rate multiplier",
        description="Scales the tuning method's own learning rate: 1.0 keeps it, 0.5 halves it, 2 "
        "doubles it; above 0 and at most 10, for example 1.0. Lower it when the tuned model forgets "
        "what the base model knew; raise it when tuning barely changes the answers.",
    ),
    "tuned_model_name": Param(
        "ARIA-text",
        type="string",
        minLength=1,
        maxLength=128,
        title="Tuned model name",
        description="Display name of the parent model in the Vertex AI Model Registry: each run adds "
        "a version to it (alias `candidate`, then `production` once it passes the gate). 1 to 128 "
        "characters, for example ARIA-text.",
    ),
    "endpoint_name": Param(
        "ARIA-text-endpoint",
        type="string",
        minLength=1,
        maxLength=128,
        title="Endpoint name",
        description="Display name of the Vertex AI endpoint that serves the model (created when no "
        "endpoint has it). 1 to 128 characters, for example ARIA-text-endpoint.",
    ),
    "traffic_percentage": Param(
        10,
        type="integer",
        minimum=1,
        maximum=100,
        title="Canary traffic (%)",
        description="The share of the production endpoint's traffic a version that passed the gate gets "
        "first, for example 10; 100 skips the canary. (With nothing else serving it takes all of it.)",
    ),
    "canary_steps": Param(
        [],
        type="array",
        items={"type": "integer", "minimum": 1, "maximum": 99},
        title="Canary steps (%)",
        description="Shares between the first and 100%, each after its own soak, for example [25, 50]. "
        "Empty: straight from the first share to all of it.",
    ),
    "canary_soak_seconds": Param(
        CANARY_SOAK_SECONDS,
        type="integer",
        minimum=0,
        maximum=86400,
        title="Canary soak (seconds)",
        description="How long each canary share serves before the error check, for example 1800.",
    ),
    "max_error_rate_increase": Param(
        0.01,
        type="number",
        minimum=0,
        maximum=1,
        title="Allowed rise in error rate",
        description="The canary goes on only while its prediction error rate (Cloud Monitoring) is at "
        "most this much above the versions it shares traffic with, for example 0.01 (one point).",
    ),
    "evaluation_metrics": Param(
        list(promotion.DEFAULT_METRICS),
        type="array",
        items={"type": "string", "enum": sorted(promotion.METRICS)},
        minItems=1,
        title="Evaluation metrics",
        description="Computation-based metrics of Vertex's Gen AI evaluation service (evaluateInstances) "
        "scored on every held-out prompt for the candidate and the champion.",
    ),
    "primary_metric": Param(
        promotion.DEFAULT_PRIMARY,
        type="string",
        enum=sorted(promotion.METRICS),
        title="Primary metric",
        description="The metric the promotion rule compares (one of the evaluation metrics).",
    ),
    "promotion_tolerance": Param(
        promotion.DEFAULT_TOLERANCE,
        type="number",
        minimum=0,
        maximum=1,
        title="Promotion tolerance",
        description="How much lower than the champion's the candidate's mean primary metric may be.",
    ),
    "promotion_floor": Param(
        promotion.DEFAULT_FLOOR,
        type="number",
        minimum=0,
        maximum=1,
        title="Promotion floor",
        description="The candidate's mean primary metric must be at least this, whatever the champion's.",
    ),
    "evaluation_prompts": Param(
        50,
        type="integer",
        minimum=1,
        maximum=1000,
        title="Evaluation prompts",
        description="Held-out prompts sent to each of the candidate and the champion (the first N).",
    ),
    "evaluation_concurrency": Param(
        4,
        type="integer",
        minimum=1,
        maximum=16,
        title="Evaluation concurrency",
        description="Prompts in flight at once per endpoint (429/5xx answers are retried).",
    ),
    "dry_run": Param(
        False,
        type="boolean",
        title="Dry run",
        description="On: validate the data and plan the run (time and cost) only: no tuning, no "
        "spend. For example on, for a first look at a new version.",
    ),
    "allow_unmanifested": Param(
        False,
        type="boolean",
        title="Accept a version without a manifest",
        description="Off: the run waits for the version's _MANIFEST.json (`vertex-tuning publish`). "
        "On: a version without one is used once its upload has been quiet for "
        "ARIA_UPLOAD_INACTIVITY_SECONDS (the rule before manifests; a pause that long mid-upload "
        "would train on part of the data).",
    ),
    "refuse_unlisted": Param(
        False,
        type="boolean",
        title="Refuse files the manifest does not list",
        description="Off: objects under the version that its manifest does not list are reported and "
        "ignored. On: they fail the run.",
    ),
}

# Every description ends with an example of a valid value; what each task runs with is logged by it.
add_examples(PARAMS)
#: The params the Python tasks read (the operators' come from their templates, found at the end).
PARAMS_USED_BY: dict[str, list[str]] = {
    "resolve_dataset_version": ["dataset_uri", "base_model"],
    "prepare_dataset": ["base_model", "accelerator", "epochs", "train_steps", "batch_size"],
    "dry_run_or_tune": ["dry_run"],
}

default_args = {
    "owner": "aria-ml",
    "retries": 2,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(hours=1),
    # Each task logs the params it uses, and says when one sits on a bound the form clamps to.
    "on_execute_callback": log_params_used_by(
        PARAMS_USED_BY, {n: p.schema for n, p in PARAMS.items()}, {n: p.value for n, p in PARAMS.items()}
    ),
}

with DAG(
    dag_id=DAG_ID,
    description="Tune ARIA-text on Vertex AI from a dataset version, register, deploy and quality-gate it",
    schedule=SCHEDULE,
    start_date=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
    catchup=CATCHUP,
    # One TPU v3 pod of quota: never two tuning runs at once, backfills included.
    max_active_runs=1,
    # Sensors (up to 12 h) + a multi-hour tuning run (the plan refuses more steps than fit) + deploy.
    dagrun_timeout=dt.timedelta(hours=36),
    default_args=default_args,
    params=PARAMS,
    render_template_as_native_obj=True,
    tags=["aria-text", "vertex-ai", "llm-tuning", "ml"],
    doc_md=__doc__
    + """
### Flow
`resolve_dataset_version` → `wait_for_dataset_version` → `prepare_dataset`
→ `dry_run_or_tune` → `tune` → `register_model` → `clean_up_tuning_outputs`
→ `deploy_for_evaluation` → `quality_gate` → `deploy_model` (canary), with `tear_down_evaluation`
after the gate whatever it decided (or → `dry_run_report` when **dry_run** is set).

### Promotion
Nothing reaches users before the gate: the candidate answers the held-out prompts on an evaluation
endpoint, the version holding `production` (the base model on the first run) answers the same prompts,
and Vertex's Gen AI evaluation service scores both. The candidate is promoted only if its mean
**primary_metric** is at least the champion's minus **promotion_tolerance** and at least
**promotion_floor**; it then goes out by canary. A refused candidate gets the alias `rejected` and
production is not touched. Roll back with the DAG `aria_text_rollback`.

### Dataset versions
Each run trains on one version under `gs://<aria_data_bucket>/<aria_dataset_prefix>/raw/` (Variables
`aria_data_bucket`, default `aria-datasets`; `aria_dataset_prefix`, default `aria-text`), and its note names
it. Scheduled runs and backfills: `raw/v=<ds>/`, waited for. Manual runs: **dataset_uri** if set; else
`raw/v=<logical date>/` when it is already complete, else the newest complete version; with none, the run
fails at once saying where it looked. Retrain one version: trigger with **dataset_uri** set to its folder
(a logical date already used says "Conflict": clear the logical date, or clear the old run's tasks).
Retrain a range of past versions with a backfill, one run at a time:
`airflow backfill create --dag-id aria_text_tuning --from-date 2025-06-01 --to-date 2025-06-15`.

### Configuration
Variables `aria_project`, `aria_data_bucket`, `aria_dataset_prefix`, `aria_pipeline_root`; the
connection `google_cloud_default`. Environment: `ARIA_TUNING_SCHEDULE` (default `@weekly`; `backfill`:
weekly intervals for backfills and manual runs, no scheduled run;
`none`: manual runs only),
`ARIA_TUNING_CATCHUP`, `ARIA_UPLOAD_INACTIVITY_SECONDS`, `ARIA_SENSOR_POKE_SECONDS`,
`ARIA_VERTEX_POLL_SECONDS`, `ARIA_RETRY_DELAY_SECONDS`.
""",
) as dag:

    @task(
        doc_md="Resolves the dataset version of this run: the `dataset_uri` param; else, for a manual "
        "run, `raw/v=<ds>/` if it is complete (its manifest verifies), or the newest complete version, "
        "failing at once when there is none; else (scheduled, backfill) `raw/v=<ds>/`.",
        retries=0,
    )
    def resolve_dataset_version(**context) -> dict[str, str]:
        from airflow.sdk import Variable

        try:
            from airflow.sdk.exceptions import AirflowFailException
        except ImportError:  # Airflow 3.1
            from airflow.exceptions import AirflowFailException

        from aria_tuning.hooks.gcs import StorageHook
        from aria_tuning.newest_version import is_complete, newest_complete_version
        from aria_tuning.run_dataset import NoCompleteVersion, resolve_run_dataset

        storage_client = StorageHook().storage_client
        run_type = context["dag_run"].run_type
        try:
            chosen = resolve_run_dataset(
                dataset_uri=context["params"]["dataset_uri"],
                run_type=str(getattr(run_type, "value", run_type)),
                ds=context.get("ds"),
                bucket=Variable.get("aria_data_bucket", default="aria-datasets"),
                dataset_prefix=Variable.get("aria_dataset_prefix", default="aria-text"),
                model=context["params"]["base_model"],
                newest=lambda b, p: newest_complete_version(storage_client, b, p),
                is_complete=lambda b, p: is_complete(storage_client, b, p),
            )
        except NoCompleteVersion as exc:
            # Nothing to wait for: fail now and free the DAG's one run slot for a run that can work.
            raise AirflowFailException(str(exc)) from exc
        print(
            f"This run trains on dataset version {chosen['version']} ({chosen['uri']}), chosen by "
            f"{chosen['chosen_by']}"
        )
        return chosen

    version = resolve_dataset_version()

    wait_for_version = DatasetVersionSensor(
        task_id="wait_for_dataset_version",
        doc_md="Deferred until the version's manifest exists and every file it lists is in GCS with "
        "its size and crc32c; a missing or different file fails here, before any Vertex call. Returns "
        "the files at the generations it checked. Without a manifest: only with `allow_unmanifested`, "
        "after `ARIA_UPLOAD_INACTIVITY_SECONDS` of quiet.",
        bucket=xcom("resolve_dataset_version", "bucket"),
        prefix=xcom("resolve_dataset_version", "prefix"),
        allow_unmanifested="{{ params.allow_unmanifested }}",
        refuse_unlisted="{{ params.refuse_unlisted }}",
        inactivity_period=UPLOAD_INACTIVITY_SECONDS,
        poke_interval=SENSOR_POKE_SECONDS,
        timeout=12 * 3600,
        # Time on the worker only (one check, then deferred): the wait itself is bounded by `timeout`.
        execution_timeout=dt.timedelta(minutes=10),
        retries=0,
    )

    @task(
        outlets=[PREPARED_DATASET],
        doc_md="Validates, converts, deduplicates, splits and plans (aria_tuning.dataprep); writes "
        "train/eval/report to GCS and returns only their URIs, the counts and the plan. Invalid data "
        "fails here with every problem as `file:line: reason`, before any Vertex call.",
    )
    def prepare_dataset(version: dict[str, str], sensed: dict, **context) -> dict:
        try:
            from airflow.sdk.exceptions import AirflowFailException
        except ImportError:  # Airflow 3.1
            from airflow.exceptions import AirflowFailException

        from aria_tuning.catalog import TuningMethod, get_model
        from aria_tuning.dataprep import prepare_dataset as prepare
        from aria_tuning.errors import DatasetError, PlanError
        from aria_tuning.hooks.gcs import StorageHook

        params = context["params"]
        # Accelerator, steps and batch size are pipeline (text-bison) settings; Vertex picks them for Gemini.
        is_pipeline = get_model(params["base_model"]).method is TuningMethod.PIPELINE
        try:
            result = prepare(
                # Exactly the files the sensor verified, at the generations it verified.
                [obj["uri"] for obj in sensed["objects"]],
                params["base_model"],
                version["prepared_uri"],
                epochs=params["epochs"],
                accelerator=params["accelerator"] if is_pipeline else None,
                batch_size=params["batch_size"] if is_pipeline else None,
                train_steps=params["train_steps"] if is_pipeline else None,
                # Every read and write goes through the connection's credentials, as Vertex calls do.
                storage_client=StorageHook().storage_client,
            )
        except DatasetError as exc:
            shown = "\n".join(exc.problems[:50])
            more = f"\n... and {len(exc.problems) - 50} more" if len(exc.problems) > 50 else ""
            # Bad data does not get better on retry: fail without retrying.
            raise AirflowFailException(f"{exc}\n{shown}{more}") from exc
        except PlanError as exc:
            raise AirflowFailException(str(exc)) from exc
        promised = (sensed.get("manifest") or {}).get("example_count")
        if promised is not None and result.counts["read"] != promised:
            raise AirflowFailException(
                f"{version['uri']}: its manifest lists {promised} examples, its files hold "
                f"{result.counts['read']}"
            )
        print(result.plan.summary())
        summary = {**result.to_xcom(), "dataset_version": version["version"], "source_uri": version["uri"]}
        context["outlet_events"][PREPARED_DATASET].extra = {
            "train_uri": result.train_uri,
            "dataset_version": version["version"],
            "content_sha256": result.content_sha256,
        }
        return summary

    prepared = prepare_dataset(version, wait_for_version.output)

    @task.branch(doc_md="`dry_run`: stop after validation and planning; otherwise tune.")
    def dry_run_or_tune(**context) -> str:
        return "dry_run_report" if context["params"]["dry_run"] else "tune"

    @task(doc_md="Dry run: reports what a real run would do and spends nothing.")
    def dry_run_report(prep: dict) -> dict:
        from aria_tuning.dataprep.plan import TuningPlan

        plan = TuningPlan(**prep["plan"])
        print(f"DRY RUN: dataset {prep['dataset_version']} {prep['counts']}; a real run would be:")
        print(plan.summary())
        return {
            "dry_run": True,
            "counts": prep["counts"],
            "plan": prep["plan"],
            "estimate": plan.eta_and_cost(),
        }

    tune = VertexTuningOperator(
        task_id="tune",
        doc_md="Launches the tuning run (pipeline for text-bison, tuningJob for Gemini) and defers "
        "until Vertex finishes; a retry re-attaches to the same job instead of paying twice.",
        # The plan data prep made (model, region, accelerator, steps or epochs): one value, checked once.
        plan=xcom("prepare_dataset", "plan"),
        training_data_uri=xcom("prepare_dataset", "train_uri"),
        evaluation_data_uri=xcom("prepare_dataset", "eval_uri"),
        learning_rate_multiplier="{{ params.learning_rate_multiplier }}",
        project_id=PROJECT,
        tuned_model_display_name="{{ params.tuned_model_name }}",
        pipeline_root=PIPELINE_ROOT,
        poll_interval=VERTEX_POLL_SECONDS,
        max_poll_interval=10 * VERTEX_POLL_SECONDS,
        execution_timeout=dt.timedelta(hours=24),
        retries=1,
        # Quota for one TPU pod: also holds across backfill runs.
        max_active_tis_per_dag=1,
    )

    register = RegisterModelOperator(
        task_id="register_model",
        doc_md="Adds the tuned model as a new version of the parent model, alias `candidate`.",
        outlets=[TUNED_MODEL],
        tuned_model=xcom("tune", "tuned_model"),
        tuning_job=xcom("tune", "job"),
        model_display_name="{{ params.tuned_model_name }}",
        base_model="{{ params.base_model }}",
        dataset_version=xcom("prepare_dataset", "dataset_version"),
        train_steps=xcom("prepare_dataset", "plan", "train_steps"),
        epochs="{{ params.epochs }}",
    )

    clean_up = CleanUpTuningOutputsOperator(
        task_id="clean_up_tuning_outputs",
        doc_md="Undeploys and deletes the tuning run's own endpoint(s) and model: the run keeps only the "
        "version registered under the parent model. Also runs when registration failed; then only the "
        "endpoints go (they bill node-hours), the model stays for a re-run of the registration.",
        tuning_job=optional_xcom("tune", "job"),
        method=optional_xcom("tune", "method"),
        registered_version=optional_xcom("register_model", "model_version"),
        poll_interval=min(VERTEX_POLL_SECONDS, 15.0),
        trigger_rule="none_skipped",
    )

    deploy_for_evaluation = DeployModelOperator(
        task_id="deploy_for_evaluation",
        doc_md="Deploys the registered version, all traffic, to the evaluation endpoint "
        "(`<endpoint_name>-eval`, created if missing): it serves no users, and what is measured there "
        "is the very version that would be promoted.",
        model_version=xcom("register_model", "model_version"),
        endpoint_display_name="{{ params.endpoint_name }}-eval",
        traffic_percentage=100,
        console_link=False,  # the endpoint is deleted after the evaluation
        poll_interval=min(VERTEX_POLL_SECONDS, 15.0),
        execution_timeout=dt.timedelta(hours=2),
    )

    quality_gate = QualityGateOperator(
        task_id="quality_gate",
        doc_md="Champion vs challenger: the same held-out prompts go to the candidate (evaluation "
        "endpoint) and to the version holding `production` (the base model on the first run); Vertex's "
        "Gen AI evaluation service scores both. Passes only if the candidate is within "
        "`promotion_tolerance` of the champion on `primary_metric` and at least `promotion_floor`; "
        "otherwise the candidate gets the alias `rejected` and production is left as it is.",
        endpoint=xcom("deploy_for_evaluation", "endpoint"),
        model_version=xcom("register_model", "model_version"),
        eval_data_uri=xcom("prepare_dataset", "eval_uri"),
        base_model="{{ params.base_model }}",
        production_endpoint="{{ params.endpoint_name }}",
        metrics="{{ params.evaluation_metrics }}",
        primary_metric="{{ params.primary_metric }}",
        tolerance="{{ params.promotion_tolerance }}",
        floor="{{ params.promotion_floor }}",
        max_prompts="{{ params.evaluation_prompts }}",
        concurrency="{{ params.evaluation_concurrency }}",
        # Next to the prepared data: gs://<bucket>/<prefix>/prepared/<version>/<model>/evaluation/<run>/.
        report_prefix=xcom("resolve_dataset_version", "prepared_uri")
        + "evaluation/{{ run_id | replace(':', '-') | replace('+', '-') }}/",
        tuning_job=xcom("tune", "job"),
        tuning_method=xcom("tune", "method"),
        execution_timeout=dt.timedelta(minutes=30),
    )

    tear_down_evaluation = TearDownEndpointOperator(
        task_id="tear_down_evaluation",
        doc_md="Undeploys everything from the evaluation endpoint and deletes it, whatever the gate "
        "decided and also when it failed: nothing deployed for evaluation keeps billing.",
        location=f"projects/{PROJECT}/locations/" + xcom("prepare_dataset", "plan", "region"),
        endpoint_display_name="{{ params.endpoint_name }}-eval",
        poll_interval=min(VERTEX_POLL_SECONDS, 15.0),
        trigger_rule="none_skipped",
    )

    deploy = CanaryRolloutOperator(
        task_id="deploy_model",
        doc_md="Rolls the version that passed the gate out to the production endpoint (created if "
        "missing) by canary: `traffic_percentage` first, then `canary_steps`, then all, each share "
        "after a `canary_soak_seconds` soak in which its prediction error rate (Cloud Monitoring) rose "
        "no more than `max_error_rate_increase`. At 100% it gets the alias `production` and the versions "
        "it replaced are undeployed; a rise in errors sends the traffic back and fails the task.",
        model_version=xcom("register_model", "model_version"),
        endpoint_display_name="{{ params.endpoint_name }}",
        traffic_percentage="{{ params.traffic_percentage }}",
        canary_steps="{{ params.canary_steps }}",
        soak_seconds="{{ params.canary_soak_seconds }}",
        max_error_rate_increase="{{ params.max_error_rate_increase }}",
        poll_interval=min(VERTEX_POLL_SECONDS, 15.0),
        # The soaks wait in the triggerer; this bounds the time on workers and the whole rollout.
        execution_timeout=dt.timedelta(hours=30),
    )

    branch = dry_run_or_tune()
    chain(version, wait_for_version, prepared, branch)
    chain(branch, [dry_run_report(prepared), tune])
    chain(tune, register, clean_up, deploy_for_evaluation, quality_gate, deploy)
    chain([tune, register], clean_up)
    register >> deploy_for_evaluation
    chain([deploy_for_evaluation, quality_gate], tear_down_evaluation)

# The operators' params, from their templates; each task's on_execute_callback looks itself up here.
for _task_id, _names in params_in_templates(dag.tasks).items():
    PARAMS_USED_BY.setdefault(_task_id, _names)
