"""`vertex-tuning validate PATH... [--model MODEL]`: exit 0 when valid, 1 listing every problem."""

from __future__ import annotations

import argparse
import sys

from aria_tuning.catalog import DEFAULT_MODEL, model_names

#: Problems printed before "... and N more".
DEFAULT_SHOW = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="local files/dirs, gs:// objects or prefixes"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=model_names(), help="base model")
    parser.add_argument("--input-column", default="input_text", help="CSV column holding the input")
    parser.add_argument("--output-column", default="output_text", help="CSV column holding the output")
    parser.add_argument(
        "--max-problems", type=int, default=DEFAULT_SHOW, help="problems to print (default %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    from aria_tuning.dataprep import validate_sources
    from aria_tuning.errors import AriaTuningError

    try:
        result = validate_sources(
            args.paths, args.model, input_column=args.input_column, output_column=args.output_column
        )
    except AriaTuningError as exc:
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            print(problem, file=sys.stderr)
        return 1
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts().items())
    if result.acceptable():
        print(f"valid for {result.model}: {counts}; {result.unique:,} unique examples")
        return 0
    problems = result.all_problems()
    shown = problems[: args.max_problems]
    for line in shown:
        print(line)
    rest = len(problems) - len(shown) + result.unrecorded_problems
    if rest:
        print(f"... and {rest:,} more problems")
    print(f"NOT valid for {result.model}: {counts}", file=sys.stderr)
    return 1
