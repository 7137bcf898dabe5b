"""The `vertex-tuning` command line: one entry, one subcommand per module.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`.
Those modules import only argparse-level things at module level; heavy imports happen inside
`run`, so building the parser stays cheap. The offline Vertex AI emulator is no subcommand: it is
never deployed, and runs as `python -m vertex_emulator`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("aria_tuning.commands.validate", "check a dataset for a base model; print every problem"),
    "plan": ("aria_tuning.commands.plan", "validate a dataset and print the tuning plan (steps, batch, ETA)"),
    "publish": ("aria_tuning.commands.publish", "upload a dataset version to GCS, then its manifest (last)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vertex-tuning", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
