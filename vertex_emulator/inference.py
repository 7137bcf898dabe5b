"""How emulated models answer: a tuned model answers like its nearest training example, adapted.

Deterministic on purpose: the same prompt always gets the same answer, and the answer tells
which dataset the deployed model was tuned on (an end-to-end test can prove the version).

1. Retrieval: the training prompt nearest to the prompt by TF-IDF cosine over word tokens, so the
   words that tell requests apart ("factura", "portabilidad") weigh more than the ones every
   request shares ("hola", "soy"); ties go to the earlier example.
2. Adaptation, a toy copy mechanism: where the two prompts differ by a name, a place or a number
   in both (a differing span with a digit or a capitalised word past the first), the nearest
   example's answer gets the prompt's span instead. A training prompt is answered with its own answer.

So a model tuned on good data answers held-out prompts of the same kind well, one tuned on wrong
answers repeats them, and one with no examples (base models, plain uploads, a degraded model)
echoes the prompt, tagged with its label.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Sequence

#: Characters per token of the emulator's token estimate.
CHARS_PER_TOKEN = 4
#: Words, keeping numbers like "24,95" or "NB-123456" whole.
_WORD = re.compile(r"\w+(?:[.,/-]\w+)*")


def answer(prompt: str, examples: Sequence[Sequence[str]], model_label: str) -> str:
    if not examples:
        return f"[{model_label}] {prompt}"
    nearest = examples[_nearest(prompt, [str(example[0]) for example in examples])]
    return adapt(str(nearest[0]), str(nearest[1]), prompt)


def _words(text: str) -> list[str]:
    return [match.group(0) for match in _WORD.finditer(text)]


def _nearest(prompt: str, prompts: list[str]) -> int:
    """Index of the prompt with the largest TF-IDF cosine to `prompt` (the first on ties)."""
    documents = [Counter(word.casefold() for word in _words(p)) for p in prompts]
    frequency: Counter[str] = Counter(word for document in documents for word in document)
    n = len(documents)

    def weights(counts: Counter[str]) -> dict[str, float]:
        raw = {
            word: (1 + math.log(count)) * (math.log((1 + n) / (1 + frequency[word])) + 1)
            for word, count in counts.items()
        }
        norm = math.sqrt(sum(value * value for value in raw.values())) or 1.0
        return {word: value / norm for word, value in raw.items()}

    query = weights(Counter(word.casefold() for word in _words(prompt)))
    best, best_score = 0, -1.0
    for index, document in enumerate(documents):
        score = sum(query.get(word, 0.0) * value for word, value in weights(document).items())
        if score > best_score:
            best, best_score = index, score
    return best


def adapt(source_prompt: str, source_answer: str, prompt: str) -> str:
    """`source_answer` with the names, places and numbers that differ between the prompts swapped."""
    old, new = _words(source_prompt), _words(prompt)
    matcher = difflib.SequenceMatcher(
        a=[w.casefold() for w in old], b=[w.casefold() for w in new], autojunk=False
    )
    adapted = source_answer
    for operation, i1, i2, j1, j2 in matcher.get_opcodes():
        if operation != "replace" or not (
            any(_is_entity(old[i], i) for i in range(i1, i2))
            and any(_is_entity(new[j], j) for j in range(j1, j2))
        ):
            continue  # an entity is swapped for an entity only; any other rewording is not copied
        span = re.compile(r"(?<!\w)" + re.escape(" ".join(old[i1:i2])) + r"(?!\w)")
        adapted = span.sub(" ".join(new[j1:j2]), adapted)
    return adapted


def _is_entity(word: str, position: int) -> bool:
    """A number, or a capitalised word that does not open the prompt (a greeting usually does)."""
    return any(c.isdigit() for c in word) or (position > 0 and word[:1].isupper())


def token_count(text: str) -> int:
    """Rough token estimate for usage metadata (about four characters a token)."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN)) if text else 0
