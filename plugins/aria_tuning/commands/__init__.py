"""`vertex-tuning` subcommands of the aria_tuning package (one module each: add_arguments, run)."""
