"""How emulated models answer: a tuned model returns the answer of its nearest training prompt.

Deterministic on purpose: the same prompt always gets the same answer, and the answer tells
which dataset the deployed model was tuned on (an end-to-end test can prove the version).
Models with no training examples (base models, plain uploads) echo the prompt, tagged.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz, process

#: Characters per token of the emulator's token estimate.
CHARS_PER_TOKEN = 4


def answer(prompt: str, examples: Sequence[Sequence[str]], model_label: str) -> str:
    if not examples:
        return f"[{model_label}] {prompt}"
    prompts = [example[0] for example in examples]
    best = process.extractOne(prompt, prompts, scorer=fuzz.WRatio)
    index = best[2] if best is not None else 0
    return str(examples[index][1])


def token_count(text: str) -> int:
    """Rough token estimate for usage metadata (about four characters a token)."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN)) if text else 0
