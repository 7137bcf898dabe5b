"""Benchmark 1: what importing the DAG file costs a fresh interpreter (the dag-processor's per-parse price).

Three variants, interleaved so machine load hits them alike, each in its own fresh interpreter:
`import airflow.sdk` alone, our dags/aria_text_tuning.py, and bench/provider_dag.py (the same flow with
the Google provider's Vertex AI operators). Time is measured inside the interpreter around the import;
memory is the process's peak RSS (VmHWM) when the import is done.
VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so a fresh interpreter started
by a large parent would report the parent's peak.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from bench.common import ROOT, Row, Section, run_fresh_python

OUR_DAG = ROOT / "dags" / "aria_text_tuning.py"
PROVIDER_DAG = ROOT / "bench" / "provider_dag.py"

# Everything the measurement itself needs is imported before the clock starts.
_PROBE = """
import importlib.util, json, sys, time
sys.path[:0] = [{plugins!r}, {dags!r}]
t0 = time.perf_counter()
{body}
seconds = time.perf_counter() - t0
print(json.dumps({{
    "seconds": seconds,
    "peak_rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024,
    "modules": len(sys.modules),
    "google_clients": sorted({{m.split(".")[2] for m in sys.modules
                              if m.startswith(("google.cloud.aiplatform", "google.cloud.storage"))
                              and m.count(".") >= 2}}),
}}))
"""
_IMPORT_SDK = "import airflow.sdk"
_IMPORT_FILE = """
spec = importlib.util.spec_from_file_location("dag_under_test", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


def _probe(body: str, airflow_home: str) -> dict:
    code = _PROBE.format(plugins=str(ROOT / "plugins"), dags=str(ROOT / "dags"), body=body)
    return run_fresh_python(code, env={"AIRFLOW_HOME": airflow_home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})


def measure(repetitions: int = 5) -> dict[str, dict]:
    variants = {"airflow.sdk": _IMPORT_SDK, "provider DAG": _IMPORT_FILE.format(path=str(PROVIDER_DAG))}
    if OUR_DAG.exists():
        variants["our DAG"] = _IMPORT_FILE.format(path=str(OUR_DAG))
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="bench-airflow-home-") as home:
        _probe(_IMPORT_SDK, home)  # warm the OS page cache and write airflow.cfg once, unmeasured
        for _ in range(repetitions):
            for name, body in variants.items():
                samples[name].append(_probe(body, home))
    return {
        name: {
            "seconds": statistics.median(s["seconds"] for s in runs),
            "peak_rss_mb": statistics.median(s["peak_rss_mb"] for s in runs),
            "modules": runs[-1]["modules"],
            "google_clients": runs[-1]["google_clients"],
            "repetitions": len(runs),
        }
        for name, runs in samples.items()
    }


def section(repetitions: int = 5) -> Section:
    figures = measure(repetitions)
    sdk = figures["airflow.sdk"]
    provider = figures["provider DAG"]
    ours = figures.get("our DAG")
    time_limit = 1.5 * sdk["seconds"]
    rss_limit = sdk["peak_rss_mb"] + 50
    rows = [
        Row(
            "1. DAG parse time",
            ours["seconds"] if ours else None,
            provider["seconds"],
            "s",
            f"<= 1.5x bare airflow.sdk ({sdk['seconds']:.2f} s) = {time_limit:.2f} s",
            ours["seconds"] <= time_limit if ours else None,
        ),
        Row(
            "1. DAG parse peak RSS",
            ours["peak_rss_mb"] if ours else None,
            provider["peak_rss_mb"],
            "MB",
            f"<= bare airflow.sdk ({sdk['peak_rss_mb']:.0f} MB) + 50 MB",
            ours["peak_rss_mb"] <= rss_limit if ours else None,
        ),
    ]
    table = [
        "| Variant | Import time (median) | x airflow.sdk | Peak RSS | + vs airflow.sdk | Modules loaded | "
        "Google client packages loaded |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, fig in figures.items():
        table.append(
            f"| {name} | {fig['seconds']:.2f} s | {fig['seconds'] / sdk['seconds']:.2f}x "
            f"| {fig['peak_rss_mb']:.0f} MB | +{fig['peak_rss_mb'] - sdk['peak_rss_mb']:.0f} MB "
            f"| {fig['modules']} | {', '.join(fig['google_clients']) or 'none'} |"
        )
    missing = (
        "" if ours else "\n\n**dags/aria_text_tuning.py does not exist yet: our figure is not measured.**"
    )
    text = (
        f"Median of {repetitions} fresh interpreters per variant, variants interleaved. The clock runs "
        "inside the interpreter around the import only (interpreter start-up excluded); memory is the peak "
        "RSS of the process. `AIRFLOW_HOME` is a throw-away directory.\n\n" + "\n".join(table) + missing
    )
    return Section("1. DAG parse cost", rows, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    result = section(args.repetitions)
    print(result.text)


if __name__ == "__main__":
    main()
