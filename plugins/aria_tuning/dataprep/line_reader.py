"""Numbered lines from a byte stream, never holding more than one block plus one line.

Lines longer than `max_line_bytes` are measured and skipped, not kept: a runaway line (a binary
file, a missing newline) costs no memory. A UTF-8 byte-order mark at the start is dropped.
Lines come in blocks (a list per read) so the hot path can work on thousands at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import BinaryIO

#: Bytes read at a time: big enough that per-read overhead vanishes, small next to the RSS budget
#: (a block is held about five times over: raw, split, joined, decoded, converted).
BLOCK_SIZE = 1 << 20
BOM = b"\xef\xbb\xbf"

#: (number of the first line, the lines without "\n" (an int: the byte length of a line over the
#: limit, whose bytes were dropped), clean: no int in the list, terminated: every line ended
#: with "\n" (False only for a last line without newline, which comes alone)).
Block = tuple[int, list[bytes | int], bool, bool]
#: (line number, the line or None when over the limit, byte length, terminated)
Line = tuple[int, bytes | None, int, bool]


def iter_blocks(stream: BinaryIO, max_line_bytes: int, block_size: int = BLOCK_SIZE) -> Iterator[Block]:
    lineno = 1
    carry = b""  # start of the current line, continued in the next block
    over = -1  # >= 0 while discarding an over-long line: its length so far
    read = stream.read
    head = read(block_size)
    while head and len(head) < len(BOM):  # tiny reads: make sure a whole BOM can be seen
        more = read(block_size)
        if not more:
            break
        head += more
    if head.startswith(BOM):
        head = head[len(BOM) :]
    for block in chain((head,), iter(lambda: read(block_size), b"")):
        if not block:
            continue
        parts: list[bytes | int] = block.split(b"\n")  # type: ignore[assignment]
        tail = parts.pop()
        assert isinstance(tail, bytes)
        if not parts:  # no newline in this block: the current line goes on
            if over >= 0:
                over += len(tail)
            else:
                carry += tail
                if len(carry) > max_line_bytes:
                    over, carry = len(carry), b""
            continue
        if carry:
            parts[0] = carry + parts[0]  # type: ignore[operator]
        clean = max(map(len, parts)) <= max_line_bytes  # type: ignore[arg-type]
        if not clean:
            parts = [p if len(p) <= max_line_bytes else len(p) for p in parts]  # type: ignore[arg-type]
        if over >= 0:
            ended = parts[0]
            parts[0] = over + (ended if isinstance(ended, int) else len(ended))
            clean = False
        carry, over = tail, -1
        if len(carry) > max_line_bytes:
            over, carry = len(carry), b""
        yield lineno, parts, clean, True
        lineno += len(parts)
    if over >= 0:
        yield lineno, [over], False, False
    elif carry:
        yield lineno, [carry if len(carry) <= max_line_bytes else len(carry)], True, False


def iter_lines(stream: BinaryIO, max_line_bytes: int, block_size: int = BLOCK_SIZE) -> Iterator[Line]:
    """One line at a time (for CSV, whose records may span lines)."""
    for first, lines, _, terminated in iter_blocks(stream, max_line_bytes, block_size):
        for k, line in enumerate(lines):
            if isinstance(line, int):
                yield first + k, None, line, terminated
            else:
                yield first + k, line, len(line), terminated
