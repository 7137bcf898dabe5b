"""What validation found: problems (`file:line: reason`), counts, token statistics, digests."""

from __future__ import annotations

from dataclasses import dataclass, field

from aria_tuning.dataprep.digests import DigestSet
from aria_tuning.dataprep.tokens import TokenHistogram

#: Problems kept in memory (and in the report); beyond that they are only counted.
MAX_RECORDED_PROBLEMS = 100_000


@dataclass(frozen=True)
class Problem:
    source: str
    line: int | None  # None: a dataset-level problem (empty, too few examples)
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


@dataclass
class ValidationResult:
    """What pass one found: counts, problems, token statistics and the kept examples' digests."""

    model: str
    sources: list[str]
    read: int = 0
    invalid: int = 0
    duplicates: int = 0
    problems: list[Problem] = field(default_factory=list)
    unrecorded_problems: int = 0
    dataset_problems: list[Problem] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    input_tokens: TokenHistogram = field(default_factory=TokenHistogram)
    output_tokens: TokenHistogram = field(default_factory=TokenHistogram)
    digests: DigestSet = field(default_factory=DigestSet)

    @property
    def valid(self) -> int:
        return self.read - self.invalid

    @property
    def unique(self) -> int:
        return self.valid - self.duplicates

    @property
    def invalid_fraction(self) -> float:
        return self.invalid / self.read if self.read else 0.0

    def add_problem(self, source: str, line: int | None, reason: str) -> None:
        self.invalid += 1
        if len(self.problems) < MAX_RECORDED_PROBLEMS:
            self.problems.append(Problem(source, line, reason))
        else:
            self.unrecorded_problems += 1

    def all_problems(self) -> list[str]:
        return [str(p) for p in (*self.dataset_problems, *self.problems)]

    def acceptable(self, invalid_policy: str = "fail", max_invalid_fraction: float = 0.0) -> bool:
        """Whether prep may go on: no dataset-level problem, and invalid lines within the policy."""
        if self.dataset_problems:
            return False
        if not self.invalid:
            return True
        return invalid_policy == "skip" and self.invalid_fraction <= max_invalid_fraction

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
        }
