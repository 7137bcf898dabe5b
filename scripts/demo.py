"""`make demo`: the ARIA-text DAG end to end against the offline emulators, with a readable summary.

Starts a GCS emulator and the Vertex AI emulator on free ports, uploads the Spanish sample dataset as
the dataset version of the run's logical date, runs `aria_text_tuning` with `dag.test()` on a
throw-away AIRFLOW_HOME (SQLite), stops what it started (also on failure) and prints what happened.
Exit status 0 only if every task succeeded and the model passed the quality gate.

    python -m scripts.demo [--model text-bison@001] [--date 2025-06-01] [--sample-version 2025-06-01]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from scripts.emulators import start_gcs_emulator, start_vertex_emulator
from scripts.local_airflow import REPO, migrate
from scripts.processes import free_port
from scripts.sample_data import DEFAULT_VERSION, create_buckets, upload_version

DAG_ID = "aria_text_tuning"


def start_emulators(log_dir: Path, stack: ExitStack) -> tuple[str, str]:
    """A GCS emulator and the Vertex emulator, stopped when `stack` closes; returns their URLs."""
    gcs = start_gcs_emulator(log_dir)
    stack.callback(gcs.stop)
    vertex = start_vertex_emulator(log_dir, gcs_url=gcs.url, grpc_port=free_port())  # gRPC as on Google
    stack.callback(vertex.stop)
    return gcs.url, vertex.url


def configure_airflow(home: Path, vertex_url: str, gcs_url: str) -> None:
    """Environment of the in-process Airflow: set before `airflow` is imported."""
    connection = {
        "conn_type": "google_cloud_platform",
        "extra": {"is_anonymous": True, "project": "aria-local", "vertex_api_endpoint": vertex_url},
    }
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("ARIA_DEMO_LOG_LEVEL", "WARNING"),
            "AIRFLOW__API_AUTH__JWT_SECRET": "aria-demo",
            "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(connection),
            "STORAGE_EMULATOR_HOST": gcs_url,
            "ARIA_VERTEX_API_ENDPOINT": vertex_url,
            # Emulator speed: the upload is complete after 2 quiet seconds; poll Vertex every second.
            "ARIA_UPLOAD_INACTIVITY_SECONDS": "2",
            "ARIA_SENSOR_POKE_SECONDS": "1",
            "ARIA_VERTEX_POLL_SECONDS": "1",
            "ARIA_RETRY_DELAY_SECONDS": "1",
            # Each canary share soaks 2 s (30 minutes by default) before its error check.
            "ARIA_CANARY_SOAK_SECONDS": "2",
        }
    )


def load_dag() -> Any:
    """The DAG from dags/, parsed the way the DAG processor does."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(REPO / "dags"))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags[DAG_ID]


def run_dag(dag: Any, logical_date: str, conf: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """dag.test() `dag`; returns (run state, task states, every task's return value)."""
    import datetime as dt

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    when = dt.datetime.fromisoformat(logical_date).replace(tzinfo=dt.UTC)
    run = dag.test(logical_date=when, run_conf=conf)
    with create_session() as session:
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        # A refusing quality gate fails its task, so its evaluation is under its own key, not returned.
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.key.in_(("return_value", "evaluation")),
            )
        )
        xcoms = {row.task_id: XComModel.deserialize_value(row) for row in rows}
    return str(run.state), states, xcoms


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def _clip(text: object, width: int = 100) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def evaluation(gate: dict[str, Any]) -> list[str]:
    """The champion/challenger table, the decision, a few prompts and the report's path."""
    if not gate:
        return ["Quality gate      did not run"]
    rule, champion = gate["rule"], gate["champion"]
    lines = [
        f"Quality gate      candidate vs {champion['kind']} {champion['model']} on {gate['count']} held-out "
        "prompts (Vertex evaluateInstances)",
        f"  {'metric':<14}{'candidate':>10}{'champion':>10}{'diff':>9}",
    ]
    for name in rule["metrics"]:
        mine, theirs = gate["candidate"]["aggregates"][name], champion["aggregates"][name]
        mark = "  <- primary" if name == rule["primary"] else ""
        lines.append(f"  {name:<14}{mine:>10.3f}{theirs:>10.3f}{mine - theirs:>+9.3f}{mark}")
    decision = gate["decision"]
    verdict = "PROMOTE" if decision["passed"] else "REFUSE: " + "; ".join(decision["reasons"])
    lines.append(
        f"Decision          {verdict} (rule: {rule['primary']} >= champion - {rule['tolerance']} "
        f"and >= {rule['floor']})"
    )
    for row in gate["prompts"][:2]:
        lines += [
            f"  prompt    {_clip(row['prompt'])}",
            f"  candidate {_clip(row['candidate'])}",
            f"  champion  {_clip(row['champion'])}",
            f"  expected  {_clip(row['expected'])}",
        ]
    report = gate.get("report") or {}
    lines.append(f"Report            {report.get('html', '-')}  (and {report.get('json', '-')})")
    return lines


def summary(uri: str, state: str, states: dict[str, str], xcoms: dict[str, Any], wall: float) -> str:
    prep, tuned = xcoms.get("prepare_dataset") or {}, xcoms.get("tune") or {}
    registered, deployed = xcoms.get("register_model") or {}, xcoms.get("deploy_model") or {}
    gate = xcoms.get("quality_gate") or {}
    counts, plan = prep.get("counts", {}), prep.get("plan", {})
    lines = [
        "",
        "=" * 78,
        f"ARIA-text demo: run {state.upper()} in {wall:.0f} s",
        "=" * 78,
        f"Dataset version   {prep.get('dataset_version', '?')}  ({uri})",
        f"Examples          read {counts.get('read', '?')}, valid {counts.get('valid', '?')}, "
        f"invalid {counts.get('invalid', '?')}, duplicates {counts.get('duplicates', '?')} "
        f"-> train {counts.get('train', '?')}, eval {counts.get('eval', '?')}",
        f"Plan              {plan.get('model', '?')} via {plan.get('method', '?')} on "
        f"{plan.get('accelerator') or 'Vertex-chosen hardware'} in {plan.get('region', '?')}",
        f"                  batch size {plan.get('batch_size')}, train steps {plan.get('train_steps')}, "
        f"epochs {plan.get('epochs')} (covered {plan.get('epochs_covered', 0):.2f})",
        f"                  ETA on real hardware {_hours(plan.get('eta_seconds'))} "
        f"({_hours(plan.get('eta_low_seconds'))} to {_hours(plan.get('eta_high_seconds'))}), "
        f"cost ${plan.get('cost_low_usd')} to ${plan.get('cost_high_usd')} (list prices: see the plan log)",
        f"Vertex job        {tuned.get('job', '-')}",
        f"                  final state {tuned.get('state', '-')}, {tuned.get('duration_seconds', '-')} s"
        f" (emulated), tuned model {tuned.get('tuned_model', '-')}",
        f"Registered model  {registered.get('model_version', '-')}  aliases {registered.get('aliases', '-')}",
        *evaluation(gate),
        f"Production        {deployed.get('endpoint', '-')}  traffic {deployed.get('traffic_split', '-')}"
        f"  canary {[step['share'] for step in deployed.get('steps', [])] or 'none (nothing else served)'}",
    ]
    lines.append("Tasks             " + ", ".join(f"{task}={states[task]}" for task in sorted(states)))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="text-bison@001", help="base model (default: %(default)s)")
    parser.add_argument("--date", default=DEFAULT_VERSION, help="logical date = dataset version (v=DATE)")
    parser.add_argument("--sample-version", default=DEFAULT_VERSION, help="sample version to upload")
    parser.add_argument("--keep", action="store_true", help="keep the demo's AIRFLOW_HOME and logs")
    args = parser.parse_args(argv)

    started = time.monotonic()
    work = Path(
        tempfile.mkdtemp(prefix="aria-demo-", dir=REPO / ".run" if (REPO / ".run").is_dir() else None)
    )
    log_dir = work / "logs"
    log_dir.mkdir(parents=True)
    with ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        print(f"Starting the GCS and Vertex AI emulators (logs in {log_dir}) ...", flush=True)
        gcs_url, vertex_url = start_emulators(log_dir, stack)
        configure_airflow(work / "airflow", vertex_url, gcs_url)
        create_buckets(["aria-datasets", "aria-pipeline-root"])
        uploaded = upload_version(args.sample_version, as_version=args.date)
        print(
            f"Uploaded {uploaded.examples} examples ({len(uploaded.objects)} files) to {uploaded.uri}",
            flush=True,
        )
        migrate(os.environ.copy(), log_dir)
        print(f"Running {DAG_ID} for {args.date} with {args.model} (dag.test) ...", flush=True)
        state, states, xcoms = run_dag(load_dag(), args.date, {"base_model": args.model})
        print(summary(uploaded.uri, state, states, xcoms, time.monotonic() - started))
    ok = state == "success" and all(s in ("success", "skipped") for s in states.values())
    ok = ok and bool((xcoms.get("quality_gate") or {}).get("passed"))
    print("DEMO OK" if ok else "DEMO FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
