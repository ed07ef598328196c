"""A bigger cache-soundness campaign than the test suite's: N seeded random edits.

    python bench/cache_soundness.py [--edits 200] [--seed 7]

Each edit (exported code, a demo cell, a test, a conftest, a graph.toml entry,
breaking a test and repairing any fault; a data file a test reads, scoped to its module
by `inputs` or left to everyone; a helper outside tests/; the course's own file in the
package folder; an optional library outside the root installed, changed or removed; a
pytest.ini appearing or going; a scratch file at the root; the file a skipped test waits
for appearing, changing or going; a test file rewritten with its size and mtime kept; a
keyed variable (PYTEST_ADDOPTS, OMP_DYNAMIC), a module's declared one or an undeclared
one set or unset; a file graph.toml ignores; a file in a module's tests folder) is
followed by `doit all` on a throwaway curriculum; the executed set must equal an
independent model's (the whole tree and the strict environment are inputs, less what is
ignored, scoped or another module's own; the content-addressed store keeps several
results per module) and no broken test may be reported as passing. Then narrowed
(`pytest=-k ...`) and full runs alternate: after the first of each, every run must be
fully cached. Ends with `name: value` lines.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))   # run as a script: the imports below (noqa: E402) need it

from tests.orchestrator.conftest import build  # noqa: E402
from tests.orchestrator.soundness import StalePass, run_campaign, summarize, switch_arguments  # noqa: E402


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
            mismatches = stale = 0
        except StalePass as e:
            print(f"STALE PASS: {e}")
            log, mismatches, stale = [], 1, 1
        except AssertionError as e:
            print(f"MISMATCH: {e}")
            log, mismatches, stale = [], 1, 0
    for line in log:
        print(line)
    kinds = summarize(log)
    print(f"edits by kind: {kinds}")
    print(f"soundness_edits: {len(log)}")
    print(f"soundness_mismatches: {mismatches}")
    print(f"soundness_stale_passes: {stale}")
    print(f"soundness_seconds: {time.perf_counter() - start:.1f}")
    sys.exit(mismatches)


if __name__ == "__main__":
    main()
