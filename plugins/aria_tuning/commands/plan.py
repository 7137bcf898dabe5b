"""`vertex-tuning plan PATH... --model MODEL [--accelerator TPU|GPU] [--epochs N] [--batch-size N]`."""

from __future__ import annotations

import argparse
import json
import sys

from aria_tuning.catalog import model_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="local files/dirs, gs:// objects or prefixes"
    )
    parser.add_argument("--model", required=True, choices=model_names(), help="base model")
    parser.add_argument("--accelerator", type=str.upper, choices=["TPU", "GPU"], help="pipeline models only")
    parser.add_argument("--epochs", type=float, help="epochs to cover (default: the model's)")
    parser.add_argument("--batch-size", type=int, help="override the documented batch size")
    parser.add_argument("--train-steps", type=int, help="explicit step count (pipeline models)")
    parser.add_argument("--adapter-size", type=int, help="Gemini adapter size")
    parser.add_argument("--eval-fraction", type=float, default=0.1, help="share held out for eval")
    parser.add_argument(
        "--max-eval-examples", type=int, help="cap the eval split (the model's own cap always applies)"
    )
    parser.add_argument("--max-train-steps", type=int, help="refuse plans above this many steps")
    parser.add_argument("--input-column", default="input_text", help="CSV column holding the input")
    parser.add_argument("--output-column", default="output_text", help="CSV column holding the output")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace) -> int:
    from aria_tuning.catalog import get_model
    from aria_tuning.dataprep import (
        DEFAULT_MAX_TRAIN_STEPS,
        count_candidates,
        eval_size_for,
        plan_tuning,
        validate_sources,
    )
    from aria_tuning.dataprep.tokens import mean_tokens_per_example
    from aria_tuning.errors import AriaTuningError

    try:
        spec = get_model(args.model)
        result = validate_sources(
            args.paths, args.model, input_column=args.input_column, output_column=args.output_column
        )
        if not result.acceptable():
            print(
                f"{len(result.all_problems())} problems: run `vertex-tuning validate` to list them",
                file=sys.stderr,
            )
            return 1
        candidates = count_candidates(result.digests, args.eval_fraction)
        n_eval = eval_size_for(spec, candidates, result.unique, args.max_eval_examples)
        plan = plan_tuning(
            args.model,
            result.unique - n_eval,
            epochs=args.epochs,
            accelerator=args.accelerator,
            batch_size=args.batch_size,
            train_steps=args.train_steps,
            adapter_size=args.adapter_size,
            max_train_steps=args.max_train_steps or DEFAULT_MAX_TRAIN_STEPS,
            tokens_per_example=mean_tokens_per_example(result.input_tokens, result.output_tokens),
        )
    except AriaTuningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    warning = spec.retirement_warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({**plan.to_dict(), "eval_examples": n_eval}, indent=2))
    else:
        print(plan.summary())
        print(f"  eval examples: {n_eval:,}")
    return 0
