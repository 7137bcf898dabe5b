"""`make bench`: every benchmark, one after another, into bench/RESULTS.md with the machine's description.

A benchmark that cannot run (a component missing, an emulator failing) leaves its rows "not measured" and
its error in RESULTS.md instead of stopping the others. `--only 2b --merge` runs some and merges their
rows and sections into the existing RESULTS.md (bench/results_merge.py), keeping the others.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
import traceback
from collections.abc import Callable

from bench.common import RESULTS_PATH, Section, machine_description, render_results
from bench.results_merge import merge


def _benchmarks(quick: bool) -> list[tuple[str, Callable[[], Section]]]:
    from bench import detection, finish_detection, parse_cost, prep_bench, slots, waits, waits_grpc

    return [
        ("1. DAG parse cost", lambda: parse_cost.section(repetitions=3 if quick else 5)),
        (
            "2. Waiting at scale",
            lambda: waits.section(waits=100 if quick else 500, window=15 if quick else 30),
        ),
        (
            "2b. Waiting at scale over gRPC",
            lambda: waits_grpc.section(waits=100 if quick else 500, window=15 if quick else 30),
        ),
        ("3. Worker slot-seconds per tuning run", slots.section),
        (
            "4. Detection latency",
            lambda: detection.section(manifest_runs=1 if quick else 3, inactivity_runs=0 if quick else 1),
        ),
        ("4b. Finish detection", finish_detection.section),
        (
            "5. Data prep throughput and memory",
            lambda: prep_bench.section(200_000 if quick else 1_000_000, 50_000 if quick else 100_000),
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and waits (a smoke run)")
    parser.add_argument("--only", help="comma-separated benchmark numbers to run, e.g. 1,3 or 2b")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace only those benchmarks' rows and sections in the existing RESULTS.md",
    )
    args = parser.parse_args()
    if args.merge and not (args.only and RESULTS_PATH.exists()):
        parser.error(f"--merge needs --only and an existing {RESULTS_PATH}")
    machine = machine_description()
    only = set(args.only.split(",")) if args.only else None
    sections: list[Section] = []
    started = time.monotonic()
    failed = False
    for title, run in _benchmarks(args.quick):
        if only and title.split(".")[0] not in only:
            continue
        print(f"== {title}", flush=True)
        began = time.monotonic()
        try:
            section = run()
        except Exception:
            failed = True
            section = Section(
                title, [], f"**Not measured: the benchmark failed.**\n\n```\n{traceback.format_exc()}```"
            )
        section.text += f"\n\n_Took {time.monotonic() - began:.0f} s._"
        sections.append(section)
        print(section.text, flush=True)
    preamble = f"Total benchmark time: {time.monotonic() - started:.0f} s." + (
        " (quick run)" if args.quick else ""
    )
    text = render_results(sections, machine, preamble)
    if args.merge:
        today = datetime.date.today().isoformat()
        load = machine["Load average at start (1, 5, 15 min)"]
        text = merge(RESULTS_PATH.read_text(), text, today, load)
    RESULTS_PATH.write_text(text)
    print(f"\nWrote {RESULTS_PATH}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
