"""Module 19 edge cases: bad settings, failing or malformed variants, clocks that cannot
see a call or run backwards, very fast callables, and misuse of reports and suites."""
import gc
import json
import math

import pytest

from tinytorch.benchmarking import (
    Benchmark,
    BenchmarkError,
    BenchmarkResult,
    BenchmarkSuite,
    Comparison,
    compare,
    run_benchmark,
)


def noop():
    return None


# ---- settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    (dict(repeats=0), "repeats must be a positive integer, got 0"),
    (dict(repeats=-3), "repeats must be a positive integer, got -3"),
    (dict(repeats=2.0), "repeats must be a positive integer, got 2.0"),
    (dict(repeats=True), "repeats must be a positive integer, got True"),
    (dict(number=0), "number must be a positive integer, got 0"),
    (dict(warmup=-1), "warmup must be a non-negative integer, got -1"),
    (dict(warmup=None), "warmup must be a non-negative integer, got None"),
])
def test_bad_settings_are_refused_before_anything_runs(settings, message):
    calls = []
    with pytest.raises(ValueError, match=message):
        run_benchmark(lambda: calls.append(1), **settings)
    with pytest.raises(ValueError, match=message):
        compare({"a": lambda: calls.append(1)}, **settings)
    assert calls == []


def test_zero_warmup_is_allowed(clock, scripted, unit):
    fn = scripted([1, 2])
    assert run_benchmark(fn, warmup=0, repeats=2, clock=clock).samples == (unit, 2 * unit)
    assert fn.calls == 2


def test_a_clock_must_be_callable():
    with pytest.raises(TypeError, match="clock must be callable"):
        Benchmark(clock=1.5)


# ---- variants -------------------------------------------------------------------------------

@pytest.mark.parametrize("variants", [{}, [], None, [("a", noop)]])
def test_no_variants_is_an_error(variants):
    with pytest.raises(ValueError, match="non-empty dict"):
        compare(variants)


def test_a_non_callable_variant_is_named():
    with pytest.raises(TypeError, match="variant 'broken' is not callable: got int"):
        compare({"ok": noop, "broken": 42})
    with pytest.raises(TypeError, match="variant 'fn' is not callable: got str"):
        run_benchmark("print")


@pytest.mark.parametrize("variant", [(noop,), (noop, 3), (noop, (), {}), (noop, "ab")])
def test_a_malformed_variant_tuple_is_named(variant):
    with pytest.raises(TypeError, match="variant 'v': expected a callable or"):
        compare({"v": variant})


@pytest.mark.parametrize("name", ["", 3, None])
def test_variant_names_must_be_non_empty_strings(name):
    with pytest.raises(TypeError, match="variant names must be non-empty strings"):
        compare({name: noop})


def test_an_unknown_baseline_lists_the_variants():
    with pytest.raises(ValueError, match=r"baseline 'c' is not one of the variants \['a', 'b'\]"):
        compare({"a": noop, "b": noop}, baseline="c")


def test_a_variant_that_raises_is_named_with_the_original_error(clock, scripted):
    def bad():
        raise ZeroDivisionError("division by zero")

    log = []
    variants = {"good": scripted([1] * 10, log=log), "bad": bad}
    with pytest.raises(BenchmarkError, match="variant 'bad' raised ZeroDivisionError: "
                                             "division by zero") as info:
        compare(variants, warmup=0, repeats=3, clock=clock)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert log == ["fn"]                 # the first round stopped at the failing variant


def test_a_failure_during_warmup_is_named_too():
    calls = []

    def fails_on_second_call():
        calls.append(1)
        if len(calls) == 2:
            raise KeyError("cache")

    with pytest.raises(BenchmarkError, match="variant 'flaky' raised KeyError"):
        run_benchmark(fails_on_second_call, warmup=3, repeats=1, name="flaky")


def test_the_garbage_collector_is_back_on_after_a_failure():
    assert gc.isenabled()
    with pytest.raises(BenchmarkError):
        run_benchmark(lambda: 1 / 0, warmup=0, repeats=1)
    assert gc.isenabled()


def test_a_failing_setup_is_named_with_the_variant():
    def setup():
        raise RuntimeError("no fresh copy")
    with pytest.raises(BenchmarkError, match="variant 'a' raised RuntimeError: no fresh copy"):
        compare({"a": noop}, setup=setup)
    with pytest.raises(TypeError, match="setup must be callable or None, got int"):
        compare({"a": noop}, setup=3)


# ---- metrics --------------------------------------------------------------------------------

def test_failing_metrics_name_the_variant():
    def metrics(name, output):
        return {"accuracy": 1.0} if name == "a" else {"accuracy": output["missing"]}
    with pytest.raises(BenchmarkError, match="metrics for variant 'b' raised TypeError"):
        compare({"a": noop, "b": noop}, repeats=1, warmup=0, metrics=metrics)


@pytest.mark.parametrize("values, error", [
    ([1.0], "must return a dict of numbers, got list"),
    ({"accuracy": "high"}, "'accuracy' must be a number, got 'high'"),
    ({"ok": True}, "'ok' must be a number, got True"),
    ({"n": None}, "'n' must be a number, got None"),
])
def test_metrics_must_be_numbers(values, error):
    with pytest.raises(TypeError, match=error):
        compare({"a": noop}, repeats=1, warmup=0, metrics=lambda name, out: values)


def test_metrics_must_be_callable():
    with pytest.raises(TypeError, match=r"metrics must be callable\(name, output\)"):
        compare({"a": noop}, metrics={"a": {"accuracy": 1.0}})


def test_numpy_metric_values_become_plain_numbers():
    import numpy as np
    result = compare({"a": noop}, repeats=1, warmup=0, metrics=lambda name, out: {
        "bytes": np.int64(2620), "accuracy": np.float32(0.5)})
    assert result.metrics == {"a": {"bytes": 2620, "accuracy": 0.5}}
    assert (type(result.metrics["a"]["bytes"]), type(result.metrics["a"]["accuracy"])) == (
        int, float)
    json.loads(result.to_json())          # plain numbers: serializable


# ---- clocks that cannot see a call ---------------------------------------------------------

def test_a_call_the_clock_cannot_see_has_a_zero_median(clock, scripted):
    # run_benchmark reports what it measured...
    result = run_benchmark(noop, repeats=3, clock=clock)
    assert result.samples == (0.0, 0.0, 0.0) and result.median == 0.0
    # ...but a speed-up against zero would be meaningless: compare refuses it
    with pytest.raises(BenchmarkError, match=r"variant 'instant' took 0.0 s per call .* "
                                             r"\(number=\)"):
        compare({"base": scripted([1] * 50), "instant": noop}, clock=clock)


def test_a_comparison_with_a_zero_median_cannot_compute_its_speedup():
    results = {"a": BenchmarkResult((1.0,), 1, "a"), "z": BenchmarkResult((0.0,), 1, "z")}
    comparison = Comparison("t", "a", results)
    assert comparison.speedup("a") == 1.0
    with pytest.raises(ValueError, match="variant 'z' has a median of 0.0 s per call"):
        comparison.speedup("z")


def test_a_clock_that_runs_backwards_is_an_error():
    readings = iter([10.0, 9.0])
    with pytest.raises(BenchmarkError, match="the clock went backwards by 1.0 s"):
        run_benchmark(noop, warmup=0, repeats=1, clock=lambda: next(readings))


def test_a_very_fast_call_is_measured_with_many_calls_per_sample():
    # a no-op takes tens of nanoseconds: 1,000 of them are well above perf_counter's
    # resolution, so every sample is a positive, finite time per call
    result = run_benchmark(noop, warmup=10, repeats=5, number=1000)
    assert all(0 < s < math.inf for s in result.samples)
    assert len(result.samples) == 5


def test_a_single_sample_has_zero_spread(clock, scripted, unit):
    result = run_benchmark(scripted([7]), warmup=0, repeats=1, clock=clock)
    assert (result.median, result.mean, result.stdev, result.iqr) == (7 * unit, 7 * unit,
                                                                      0.0, 0.0)


def test_one_variant_is_its_own_baseline(clock, scripted):
    result = compare({"only": scripted([3] * 4)}, warmup=1, repeats=3, clock=clock)
    assert result.speedups == {"only": 1.0} and result.fastest == "only"


# ---- reports --------------------------------------------------------------------------------

def test_a_comparison_needs_its_baseline_among_the_results():
    with pytest.raises(ValueError, match="baseline 'x' is not one of the variants"):
        Comparison("t", "x", {"a": BenchmarkResult((1.0,), 1, "a")})


def test_suite_refuses_duplicates_and_non_comparisons(clock, scripted):
    suite = BenchmarkSuite("s", environment={})
    suite.compare("one", {"a": scripted([1] * 5)}, warmup=0, repeats=2, clock=clock)
    with pytest.raises(ValueError, match="already has a comparison titled 'one'"):
        suite.compare("one", {"a": noop})
    with pytest.raises(TypeError, match="expects a Comparison, got dict"):
        suite.add({"title": "two"})
    with pytest.raises(KeyError, match=r"no comparison titled 'two'; have \['one'\]"):
        suite["two"]


def test_an_empty_suite_still_reports():
    suite = BenchmarkSuite("nothing yet", environment={"cpus": 1})
    assert suite.to_markdown() == "# nothing yet\n\nMeasured on: cpus 1\n"
    assert BenchmarkSuite.from_json(suite.to_json()) == suite


def test_loading_a_missing_file_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError):
        Comparison.load_json(tmp_path / "missing.json")
