"""Put on PYTHONPATH by the runner for the Python subprocesses a module's tests start
(e.g. a CLI run with `python -m ...`): each observes what it reads, like the pytest
process does (orchestrator/run/observe.py), then hands over to any sitecustomize that
was already on the path, so a project's own keeps working."""
import importlib.util
import os
import sys


def _observe() -> None:
    if not os.environ.get("ORCHESTRATOR_OBSERVE"):
        return
    try:
        from orchestrator.run.observe import start_from_environment
    except ImportError:       # a Python without the orchestrator installed: nothing to do
        return
    start_from_environment(at_exit=True)


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if entry and os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_chained_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:    # always, for a .py file
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_observe()
_chain()
