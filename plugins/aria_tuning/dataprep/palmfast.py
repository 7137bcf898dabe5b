"""The PaLM fast path: a whole block of `{"input_text", "output_text"}` lines handled in bulk.

One msgspec call decodes the block; token counts, limits and conversion run over columns with
the per-example work in C (map). PaLM lines bound for a PaLM model are written
verbatim when that is provably safe (see `verbatim`): exact duplicates are then byte-identical
lines, and other formats are compared in their converted form. Any block this cannot vouch for (a bad line, an
empty field, an example over a limit) is handed back to the line-by-line path, which reports
each problem at its line; both paths produce identical bytes.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable
from itertools import repeat

import msgspec

from aria_tuning.catalog import ModelSpec
from aria_tuning.dataprep.formats import Example


class PalmPair(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A PaLM line exactly; encodes to the same bytes as `convert.to_palm`."""

    input_text: str
    output_text: str


_decode_batch = msgspec.json.Decoder(list[tuple[PalmPair]]).decode
_encode = msgspec.json.Encoder().encode
_ascii_only = operator.methodcaller("encode", "ascii", "ignore")
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


def token_counts(texts: list[str]) -> list[int]:
    """`tokens.estimate_tokens` over a list, all in C (map): with `a` ASCII characters out of `n`,
    ceil(a / 4) + (n - a) == n - floor(3a / 4)."""
    three_quarters = map(
        operator.rshift, map(operator.mul, map(len, map(_ascii_only, texts)), repeat(3)), repeat(2)
    )
    return list(map(operator.sub, map(len, texts), three_quarters))


def pair_example(source: str, target: str) -> Example:
    return Example(None, (("user", source), ("model", target)))


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
        converted = [convert(pair_example(s, t)) for s, t in zip(sources, targets, strict=True)]
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    digests = [from_bytes(sha256(line).digest()[:8], "big") | 1 for line in converted]
    return converted, digests, tokens_in, tokens_out
