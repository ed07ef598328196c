"""A bigger cache-soundness campaign than the test suite's: N seeded random edits.

    python bench/cache_soundness.py [--edits 200] [--seed 7]

Each edit (exported code, a demo cell, a test, a conftest, a graph.toml entry,
breaking or repairing a test; and inputs nothing declares: a data file a test reads,
a helper imported from outside the tests dir, an optional library installed, changed
or removed, a pytest.ini appearing or going) is followed by `doit all` on a throwaway
curriculum; the executed set must equal an independent model's (which knows the
content-addressed store keeps several results per module) and no broken test may be
reported as passing. Then narrowed (`pytest=-k ...`) and full runs alternate: after
the first of each, every run must be fully cached. Ends with `name: value` lines.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.orchestrator.conftest import build  # noqa: E402
from tests.orchestrator.soundness import run_campaign, summarize, switch_arguments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soundness-") as tmp:
        project = build(Path(tmp) / "minicalc")
        try:
            log = run_campaign(project, args.edits, args.seed)
            log += switch_arguments(project)
            mismatches = 0
        except AssertionError as e:
            print(f"MISMATCH: {e}")
            log, mismatches = [], 1
    for line in log:
        print(line)
    kinds = summarize(log)
    print(f"edits by kind: {kinds}")
    print(f"soundness_edits: {len(log)}")
    print(f"soundness_mismatches: {mismatches}")
    print(f"soundness_stale_passes: {mismatches}")
    print(f"soundness_seconds: {time.perf_counter() - start:.1f}")
    sys.exit(mismatches)


if __name__ == "__main__":
    main()
