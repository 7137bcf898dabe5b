"""Surviving mutants that no test can kill, each with the reason: the code means the same either way.

Keyed by mutmut's mutant name (`module.x_function__mutmut_N`); bench/MUTATION.md shows the reason
beside the mutant's diff. A name here that no longer survives (or no longer exists) is ignored, so
re-check this list whenever a module changes: mutmut numbers a function's mutants in order.
"""

from __future__ import annotations

#: Why mutants of `find_deployed`'s splitting at "@" cannot be told apart.
_ONE_AT = (
    "differs only for a name holding two '@': a Vertex model version is projects/.../models/ID@VERSION "
    "and neither its id nor its version may hold one"
)

_SAME_FIRST_PIECE = 'split("@") with any limit has the same first piece, the only one read'

#: validate.py: where these mutants change only speed or memory, not what validation finds.
_SIZING = (
    "changes only how far the digest set is sized up front (its memory and rehashing), not what "
    "validation finds or keeps"
)
_BULK = (
    "turns the bulk PaLM path off for the block: the line-by-line path finds the same problems and "
    "writes the same bytes (palm_blocks' docstring; tests/aria_tuning/dataprep/test_palm_blocks.py)"
)
_FORMAT_LINE = (
    "format_line is only read once `format` is set, and is set with it: its first value is never read"
)

#: triggers.py `_task_state`: a wider GetTaskStates query finds the same entry.
_WIDER_QUERY = (
    "the Execution API answers {run_id: {task_id: state}} for every row it matched, and the trigger reads "
    "its own run's and task's entry: rows of other tasks, runs or map indexes the wider query adds are "
    "never read"
)

EQUIVALENT: dict[str, str] = {
    # traffic
    "aria_tuning.traffic.x_find_deployed__mutmut_5": _ONE_AT,
    "aria_tuning.traffic.x_find_deployed__mutmut_6": _ONE_AT,
    "aria_tuning.traffic.x_find_deployed__mutmut_8": _ONE_AT,
    "aria_tuning.traffic.x_find_deployed__mutmut_13": _SAME_FIRST_PIECE,
    "aria_tuning.traffic.x_find_deployed__mutmut_14": _ONE_AT,
    "aria_tuning.traffic.x_find_deployed__mutmut_16": _SAME_FIRST_PIECE,
    # alias logic (hooks/models.py)
    "aria_tuning.hooks.models.xǁModelRegistryHookǁmove_alias__mutmut_10": _ONE_AT,
    "aria_tuning.hooks.models.xǁModelRegistryHookǁmove_alias__mutmut_11": _ONE_AT,
    "aria_tuning.hooks.models.xǁModelRegistryHookǁmove_alias__mutmut_13": _ONE_AT,
    "aria_tuning.hooks.models.xǁModelRegistryHookǁmove_alias__mutmut_27": (
        "an add moves the alias anyway (aliases are unique per model: the emulator's _take_alias), so an "
        "empty removal leaves the same holder"
    ),
    "aria_tuning.hooks.models.xǁModelRegistryHookǁmove_alias__mutmut_30": (
        "a removal without aliases, as with an empty list: the add moves the alias anyway (_take_alias)"
    ),
    # split_rule
    "aria_tuning.dataprep.split_rule.x_eval_threshold__mutmut_7": (
        "a 65,537th bucket is never counted into: `digest >> 48` of a 64-bit digest is at most 65,535"
    ),
    # validate
    "aria_tuning.dataprep.validate.xǁ_FileStateǁ__init____mutmut_2": _FORMAT_LINE,
    "aria_tuning.dataprep.validate.xǁ_FileStateǁ__init____mutmut_3": _FORMAT_LINE,
    "aria_tuning.dataprep.validate.xǁValidatorǁ__init____mutmut_5": _SIZING,
    "aria_tuning.dataprep.validate.xǁValidatorǁ__init____mutmut_16": _SIZING,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_10": _SIZING,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_11": _SIZING,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_20": _SIZING,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_21": _SIZING,
    "aria_tuning.dataprep.validate.x_validate_sources__mutmut_12": _SIZING,
    "aria_tuning.dataprep.validate.x_validate_sources__mutmut_15": _SIZING,
    "aria_tuning.dataprep.validate.x_validate_sources__mutmut_23": _SIZING,
    "aria_tuning.dataprep.validate.x_validate_sources__mutmut_30": _SIZING,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_check_jsonl__mutmut_6": _BULK,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_check_jsonl__mutmut_9": _BULK,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_1": _BULK,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_27": _BULK,
    "aria_tuning.dataprep.validate.xǁValidatorǁ_palm_block__mutmut_32": (
        "all_verbatim falsy sends the block through convert_block's per-line verbatim check, which "
        "gives the same bytes (palm_blocks.convert_block)"
    ),
    # triggers
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁ_task_state__mutmut_5": _WIDER_QUERY,
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁ_task_state__mutmut_6": _WIDER_QUERY,
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁ_task_state__mutmut_7": _WIDER_QUERY,
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁ_task_state__mutmut_9": _WIDER_QUERY,
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁ_task_state__mutmut_10": _WIDER_QUERY,
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁ_task_state__mutmut_11": _WIDER_QUERY,
    "aria_tuning.triggers.xǁVertexTuningJobTriggerǁrun__mutmut_82": (
        "use_integers_for_enums=None is falsy like False: protobuf's MessageToDict writes enum names for both"
    ),
    "aria_tuning.triggers.xǁVertexOperationTriggerǁrun__mutmut_34": (
        "an operation's error is set only when it failed, with a google.rpc code of 1..16 (the emulator "
        "refuses 0): HasField('error') and a non-zero code are true together"
    ),
    # vertex_jobs
    "aria_tuning.vertex_jobs.x_existing_jobs__mutmut_10": (
        'a missing label gives None instead of "1", and `or "1"` turns both into "1"'
    ),
    "aria_tuning.vertex_jobs.x_existing_jobs__mutmut_12": (
        '`labels.get(LABEL_ATTEMPT)` without a default is None when missing; `or "1"` makes it "1" either way'
    ),
    "aria_tuning.vertex_jobs.x_short_state__mutmut_23": (
        'rsplit(".") without a limit: its last piece is the same as rsplit(".", 1)\'s'
    ),
    "aria_tuning.vertex_jobs.x_short_state__mutmut_26": 'rsplit(".", 2): the last piece is the same',
    "aria_tuning.vertex_jobs.x_job_id__mutmut_14": (
        'strip("XX-XX") strips "X" and "-": the slug is lower case, so it never holds an "X"'
    ),
    "aria_tuning.vertex_jobs.x_validate_tuning_request__mutmut_176": (
        '`or ""` after a required _gcs_uri is never reached: it returns the URI or raises'
    ),
    "aria_tuning.vertex_jobs.x_validate_tuning_request__mutmut_179": (
        "required=None instead of False: _gcs_uri only tests it for truth"
    ),
    "aria_tuning.vertex_jobs.x_validate_tuning_request__mutmut_93": (
        "region_for ignores the accelerator for tuning-job models (catalog.ModelSpec.region_for), so "
        "passing it for Gemini changes nothing"
    ),
}
