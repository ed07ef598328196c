"""How many of a result's tests passed, failed, were skipped (and why) or were not run:
the one owner of the counts that doit's lines, `status`, the graph page, the CI summary
and JUnit show, so a module reads "128 tests" everywhere, passing or failing.

    Tally.of(result).phrase()      '454 tests: 210 passed, 244 skipped'
    Tally.of(result).skip_lines()  ['244 skipped: PyTorch not installed']

"N tests" always counts the tests the run selected (`len(result.tests)`), the same N as
the runner's "7 of N failed"; a narrowed run says "22 of 199 selected" instead. A failed
test is any of store.FAILED_OUTCOMES (failed, an error in setup or teardown, a strict
xpass), as the runner counts them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from orchestrator.cache.store import FAILED_OUTCOMES, Outcome, Result

REASON = "reason"          # a skipped or xfailed test's entry: why (pytest_plugin.py)
NO_REASON = "no reason given"
MAX_REASONS = 5            # skip reasons listed; the rest are summed up in one line


class Bucket(str, Enum):
    """What the counts group outcomes into, in the order they are shown."""
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    NOT_RUN = "not run"


def bucket(outcome: str) -> Bucket:
    """The bucket of a stored outcome; an outcome we do not know is a failure (fail closed)."""
    if outcome in FAILED_OUTCOMES:
        return Bucket.FAILED
    try:
        return {Outcome.PASSED: Bucket.PASSED, Outcome.SKIPPED: Bucket.SKIPPED,
                Outcome.XFAILED: Bucket.XFAILED,
                Outcome.NOT_RUN: Bucket.NOT_RUN}[Outcome(outcome)]
    except (ValueError, KeyError):
        return Bucket.FAILED


@dataclass(frozen=True)
class Tally:
    counts: dict[Bucket, int] = field(default_factory=dict)
    collected: int | None = None      # what pytest collected, when the run narrowed it
    skipped_because: tuple[tuple[str, int], ...] = ()   # (reason, how many), most first

    @classmethod
    def of(cls, result: Result) -> Tally:
        counts: Counter = Counter()
        for outcome, n in result.counts.items():
            counts[bucket(outcome)] += n
        reasons = Counter(test.get(REASON) or NO_REASON for test in result.tests.values()
                          if test.get("outcome") == Outcome.SKIPPED)
        return cls(dict(counts), result.collected if result.narrowed else None,
                   tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))))

    def __getitem__(self, what: Bucket) -> int:
        return self.counts.get(what, 0)

    @property
    def selected(self) -> int:
        return sum(self.counts.values())

    def phrase(self, reasons: bool = False) -> str:
        """'128 tests' when all passed, else '128 tests: 118 passed, 10 skipped'; a narrowed
        run: '22 of 199 selected[: ...]'. `reasons` adds why tests were skipped, for one
        line where skip_lines() cannot go: '10 skipped (PyTorch not installed: 10)'."""
        head = f"{self.selected} of {self.collected} selected" if self.collected is not None \
            else f"{self.selected} tests"
        if self[Bucket.PASSED] == self.selected:
            return head
        parts = [f"{self[b]} {b.value}" for b in Bucket if self[b] or b is Bucket.PASSED]
        if reasons and self.skipped_because:
            why = "; ".join(f"{reason}: {n}" for reason, n in self.skipped_because[:MAX_REASONS])
            more = len(self.skipped_because) - MAX_REASONS
            why += f"; {more} other reasons" if more > 0 else ""
            parts = [f"{p} ({why})" if p.endswith(Bucket.SKIPPED.value) else p for p in parts]
        return f"{head}: {', '.join(parts)}"

    def skip_lines(self, limit: int = MAX_REASONS) -> list[str]:
        """'244 skipped: PyTorch not installed', one per reason, most frequent first."""
        lines = [f"{n} skipped: {reason}" for reason, n in self.skipped_because[:limit]]
        rest = self.skipped_because[limit:]
        if rest:
            lines.append(f"{sum(n for _, n in rest)} skipped for {len(rest)} other reasons")
        return lines
