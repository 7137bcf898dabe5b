"""The Airflow operators of ARIA-text: tune, register, deploy, quality-gate.

Import the operator from its module (`aria_tuning.operators.tuning`, ...): this package imports
nothing itself, so loading one operator never loads the others.
"""
