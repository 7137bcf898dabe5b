"""Print mutants' diffs as JSON (`{name: diff}`): run in a staging directory, names on stdin, one per
line. One process for all of them: `mutmut show` would start one per mutant."""

from __future__ import annotations

import json
import sys


def main() -> None:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    names = [line.strip() for line in sys.stdin if line.strip()]
    print(json.dumps({name: get_diff_for_mutant(name).strip() for name in names}))


if __name__ == "__main__":
    main()
