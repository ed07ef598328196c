"""The doit variables as one checked RunOptions: a bad value is one line, never a traceback."""
from __future__ import annotations

import pytest

from orchestrator.campaign.options import HELP, BadOption, RunOptions, help_text, unknown_variables


def options(**given: str) -> RunOptions:
    """RunOptions from a doit command line with these variables (doit's get_var contract)."""
    return RunOptions.from_vars(lambda name, default: given.get(name, default))


def refused(**given: str) -> str:
    with pytest.raises(BadOption) as info:
        options(**given)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults():
    assert options() == RunOptions(pytest_args=(), strict=False, flaky_attempts=1, lock="wait",
                                   xdist="policy", launcher="warm")
    assert options().wait_for_lock


def test_doit_not_running_gives_the_defaults():
    # doit's get_var returns None (not the default) when dodo.py is imported outside doit
    assert RunOptions.from_vars(lambda name, default: None) == RunOptions()


def test_empty_values_mean_the_default():
    assert options(pytest="", strict="", flaky_attempts="", lock="", xdist="",
                   launcher=" ") == RunOptions()


def test_every_variable_read():
    got = options(pytest="-x -k 'core and not slow'", strict="yes", flaky_attempts="3",
                  lock="fail", xdist="never", launcher="cold")
    assert got == RunOptions(pytest_args=("-x", "-k", "core and not slow"), strict=True,
                             flaky_attempts=3, lock="fail", xdist="never", launcher="cold")
    assert not got.wait_for_lock


@pytest.mark.parametrize("text, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("Yes", True),
    ("0", False), ("false", False), ("No", False), ("FALSE", False)])
def test_strict_accepts_the_usual_spellings(text, expected):
    assert options(strict=text).strict is expected


@pytest.mark.parametrize("text", ["maybe", "2", "on", "y"])
def test_strict_refuses_anything_else(text):
    assert refused(strict=text) == f"strict={text}: expected one of 1, true, yes, 0, false, no"


def test_unbalanced_quotes_in_pytest_args():
    assert refused(pytest="-k 'broken") == \
        "pytest=-k 'broken: unbalanced quotes (No closing quotation)"
    assert refused(pytest="-k x\\") == \
        "pytest=-k x\\: a backslash at the end (No escaped character)"


@pytest.mark.parametrize("text", ["zero", "0", "-1", "1.5", "³", "2 3"])
def test_flaky_attempts_is_a_whole_number_at_least_1(text):
    # the same message tasks.positive_int gave; "³" is str.isdigit() but not int()-able
    assert refused(flaky_attempts=text) == f"flaky_attempts={text}: expected a whole number >= 1"


def test_choices_name_the_allowed_values():
    assert refused(lock="maybe") == "lock=maybe: expected one of wait, fail"
    assert refused(xdist="sometimes") == "xdist=sometimes: expected one of policy, never, always"
    assert refused(launcher="lukewarm") == "launcher=lukewarm: expected one of warm, cold"
    assert options(lock="FAIL", launcher="Cold").launcher == "cold"


def test_options_are_frozen():
    import dataclasses
    with pytest.raises(dataclasses.FrozenInstanceError):
        options().strict = True


def test_help_has_one_line_per_variable():
    assert set(HELP) == {"pytest", "strict", "flaky_attempts", "lock", "xdist", "launcher",
                         "junit"}
    assert all("\n" not in line for line in HELP.values())
    assert len(help_text().splitlines()) == len(HELP)


def test_unknown_variable_suggests_the_closest():
    unknown_variables(["strict", "pytest"])
    with pytest.raises(BadOption) as info:
        unknown_variables(["stirct"])
    assert str(info.value) == ("stirct: unknown variable (did you mean strict?) (known: "
                               "pytest, strict, flaky_attempts, lock, xdist, launcher, junit)")
