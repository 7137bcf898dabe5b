"""PaLM lines a block at a time: one decode for the whole block, checks and conversion by column.

One msgspec call decodes a block of `{"input_text", "output_text"}` lines; token counts, limits
and conversion run over columns with the per-example work in C (map). PaLM lines bound for a
PaLM model are written verbatim when that is provably safe (see `verbatim`): exact duplicates
are then byte-identical lines, and other formats are compared in their converted form. Any
block this cannot vouch for (a bad line, an empty field, an example over a limit) is handed back
to the line-by-line path, which reports each problem at its line; both paths produce identical
bytes.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import msgspec

from aria_tuning.catalog import ModelSpec
from aria_tuning.dataprep.digests import digests_of
from aria_tuning.dataprep.input_formats import Example, palm_example
from aria_tuning.dataprep.tokens import token_counts


class PalmPair(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A PaLM line exactly; encodes to the same bytes as `convert.to_palm`."""

    input_text: str
    output_text: str


_decode_batch = msgspec.json.Decoder(list[tuple[PalmPair]]).decode
_encode = msgspec.json.Encoder().encode
_first = operator.itemgetter(0)
_input_text = operator.attrgetter("input_text")
_output_text = operator.attrgetter("output_text")


def verbatim(line: bytes) -> bool:
    """Whether a line already decoded as one strict PalmPair can be written as it is.

    Every `_text"` in valid JSON ends a string (an unescaped quote cannot sit inside one), so
    exactly two of them means the two keys appear once each (no duplicate key, even escaped)
    and no value ends in "_text". A CR (CRLF files) is left to re-encoding.
    """
    return line.count(b'_text"') == 2 and b"\r" not in line


def palm_line(source: str, target: str, line: bytes | None) -> bytes:
    """The PaLM training line for one example: `line` itself when `verbatim`, else re-encoded."""
    if line is not None and verbatim(line):
        return line
    return _encode(PalmPair(source, target))


def decode_block(lines: list[bytes]) -> tuple[list[PalmPair], bool] | None:
    """(every line as a PalmPair, whether all lines are `verbatim`), or None when any line is
    not exactly one PaLM object.

    The lines are decoded as `[[line1]\\n,[line2]\\n,...]`. A raw newline cannot sit inside a
    JSON string, and a strict struct of two strings holds no array, so a batch that decodes to
    exactly one struct per line proves every line is one valid PaLM object on its own: lines
    that are only valid together (`...}],[{...`) cannot balance out.
    """
    head, tail = lines[0], lines[-1]
    lines[0] = b"[[" + head
    lines[-1] = (lines[0] if len(lines) == 1 else tail) + b"]]"
    joined = b"]\n,[".join(lines)
    try:
        batch = _decode_batch(joined)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    finally:
        lines[0], lines[-1] = head, tail
    if len(batch) != len(lines):
        return None
    # Each line holds at least its two keys, so a total of exactly 2 per line means 2 in each.
    all_verbatim = joined.count(b'_text"') == 2 * len(lines) and b"\r" not in joined
    return list(map(_first, batch)), all_verbatim


Converted = tuple[list[bytes], list[int], list[int], list[int]]


def convert_block(
    pairs: list[PalmPair],
    spec: ModelSpec,
    convert: Callable[[Example], bytes] | None,
    lines: list[bytes],
    all_verbatim: bool,
) -> Converted | None:
    """(converted lines, digests, input tokens, output tokens), or None when some example has a
    problem. `convert` None means the target is PaLM too: `lines` are kept verbatim where safe,
    the others re-encoded."""
    sources = list(map(_input_text, pairs))
    targets = list(map(_output_text, pairs))
    if (
        not (all(sources) and all(targets))
        or any(map(str.isspace, sources))
        or any(map(str.isspace, targets))
    ):
        return None
    tokens_in, tokens_out = token_counts(sources), token_counts(targets)
    max_total = spec.max_total_tokens or spec.max_input_tokens + spec.max_output_tokens
    if (
        max(tokens_in) > spec.max_input_tokens
        or max(tokens_out) > spec.max_output_tokens
        or max(map(operator.add, tokens_in, tokens_out)) > max_total
    ):
        return None
    if convert is None and all_verbatim:
        converted = lines
    elif convert is None:  # line by line: the same bytes whatever else shares the block
        converted = [
            line if verbatim(line) else _encode(pair) for line, pair in zip(lines, pairs, strict=True)
        ]
    else:
        converted = [convert(palm_example(s, t)) for s, t in zip(sources, targets, strict=True)]
    return converted, digests_of(converted), tokens_in, tokens_out
