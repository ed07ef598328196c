"""Module 19 core: the harness driven by a fake clock whose time the test scripts, so
statistics, speed-ups, call counts and call order equal hand-computed values exactly;
reports (JSON, Markdown, text) checked character for character."""
import inspect
import json
import math
import time

import pytest

from tinytorch.benchmarking import (
    Benchmark,
    BenchmarkResult,
    BenchmarkSuite,
    Comparison,
    compare,
    run_benchmark,
)
from tinytorch.profiling import LatencyResult

API = ["BenchmarkResult", "BenchmarkError", "JsonReport", "Comparison", "Benchmark",
       "run_benchmark", "compare", "environment", "BenchmarkSuite", "format_metric",
       "markdown_table", "text_table"]


# ---- one callable: statistics ------------------------------------------------------------

def test_statistics_equal_hand_computed_values(clock, scripted, unit):
    # nine samples whose sorted order is 1 3 4 4 5 6 6 7 9 (units): sum 45, mean 5,
    # squared deviations 16+4+1+1+0+1+1+4+16 = 44, sample variance 44/8 = 5.5
    durations = [6, 1, 9, 4, 5, 7, 3, 4, 6]
    result = run_benchmark(scripted(durations), warmup=0, repeats=9, clock=clock)
    assert result.samples == tuple(d * unit for d in durations)      # in the order timed
    assert result.median == 5 * unit
    assert result.mean == 5 * unit
    assert result.stdev == math.sqrt(5.5) * unit
    assert result.min == 1 * unit and result.max == 9 * unit
    # linear interpolation at (n-1) q = 8 q: p25 at index 2, p75 at index 6 (sorted)
    assert result.p25 == 4 * unit and result.p75 == 6 * unit
    assert result.iqr == 2 * unit
    assert result.repeats == 9 and result.number == 1 and result.warmup == 0


def test_percentiles_interpolate_between_samples(clock, scripted, unit):
    # eleven samples 0, 2, 4, ..., 20: index (n-1) q = 10 q
    result = run_benchmark(scripted(range(0, 22, 2)), warmup=0, repeats=11, clock=clock)
    assert result.p90 == 18 * unit                        # index 9
    assert result.p25 == 5 * unit                         # index 2.5: halfway between 4 and 6
    assert result.p75 == 15 * unit                        # index 7.5: halfway between 14 and 16
    assert result.percentile(5) == 1 * unit               # index 0.5
    assert result.median == 10 * unit


def test_a_sample_is_the_time_of_number_calls_divided_by_number(clock, scripted, unit):
    # number=4: samples are the means of 4 calls: (1+2+3+4)/4, (8+8+8+0)/4
    fn = scripted([1, 2, 3, 4, 8, 8, 8, 0])
    result = run_benchmark(fn, warmup=0, repeats=2, number=4, clock=clock)
    assert result.samples == (2.5 * unit, 6 * unit)
    assert fn.calls == 8
    assert result.number == 4


def test_warmup_calls_are_made_but_not_recorded(clock, scripted, unit):
    # three warm-up calls take 1000 units each; none of that reaches the samples
    fn = scripted([1000, 1000, 1000, 1, 3, 2, 2, 5, 7])
    result = run_benchmark(fn, warmup=3, repeats=3, number=2, clock=clock)
    assert fn.calls == 3 + 3 * 2
    assert result.samples == (2 * unit, 2 * unit, 6 * unit)
    assert result.warmup == 3


def test_the_clock_is_read_twice_per_sample_and_never_during_warmup(clock, scripted):
    run_benchmark(scripted([1] * 50), warmup=5, repeats=7, number=3, clock=clock)
    assert clock.reads == 2 * 7


def test_setup_runs_untimed_before_every_warmup_call_and_every_sample(clock, scripted, unit):
    log = []
    fn = scripted([1] * 10, name="fn", log=log)

    def setup():
        log.append("setup")
        clock.advance(100 * unit)          # slow setup: must not appear in the samples

    result = run_benchmark(fn, warmup=2, repeats=3, number=2, setup=setup, clock=clock)
    assert log == ["setup", "fn"] * 2 + ["setup", "fn", "fn"] * 3
    assert result.samples == (unit, unit, unit)


def test_args_of_a_variant_tuple_are_passed_to_every_call(clock, scripted):
    fn = scripted([1] * 5)
    result = run_benchmark((fn, (3, "x")), warmup=1, repeats=2, number=2, clock=clock)
    assert fn.args == [(3, "x")] * 5
    assert result.name == "fn"             # a callable object without a __name__


def test_the_result_is_named_after_the_function(clock):
    def forward():
        clock.advance(1.0)
    assert run_benchmark(forward, warmup=0, repeats=1, clock=clock).name == "forward"
    assert run_benchmark(forward, warmup=0, repeats=1, clock=clock, name="f").name == "f"


def test_str_shows_the_name_and_the_median(clock, scripted, unit):
    result = run_benchmark(scripted([2] * 3), warmup=0, repeats=3, clock=clock, name="step")
    assert str(result) == "step: median 2.0 ms (p90 2.0 ms, min 2.0 ms, 3 x 1 calls)"


# ---- several callables: round-robin and speed-ups -----------------------------------------

def test_variants_run_round_robin(clock, scripted):
    log = []
    variants = {name: scripted([1] * 20, name=name, log=log) for name in "abc"}
    compare(variants, warmup=2, repeats=3, number=2, clock=clock)
    assert log == ["a", "b", "c"] * 2 + ["a", "a", "b", "b", "c", "c"] * 3


def test_speedups_are_baseline_median_over_median(clock, scripted, unit):
    variants = {"slow": scripted([5, 9, 6]),        # median 6 (mean 20/3)
                "fast": scripted([2, 1, 3]),        # median 2
                "slower": scripted([12, 12, 13])}   # median 12
    result = compare(variants, warmup=0, repeats=3, clock=clock, title="t")
    assert result.baseline == "slow"
    assert {name: r.median for name, r in result.results.items()} == {
        "slow": 6 * unit, "fast": 2 * unit, "slower": 12 * unit}
    assert result.speedups == {"slow": 1.0, "fast": 3.0, "slower": 0.5}
    assert result.fastest == "fast"
    assert list(result.results) == ["slow", "fast", "slower"]


def test_the_baseline_can_be_any_variant(clock, scripted):
    variants = {"a": scripted([6] * 3), "b": scripted([2] * 3), "c": scripted([8] * 3)}
    result = compare(variants, baseline="b", warmup=0, repeats=3, clock=clock)
    assert result.baseline == "b"
    assert result.speedups == {"a": 2 / 6, "b": 1.0, "c": 0.25}


def test_every_variant_gets_its_own_samples(clock, scripted, unit):
    variants = {"a": scripted([1, 2, 3, 4]), "b": scripted([10, 20, 30, 40])}
    result = compare(variants, warmup=1, repeats=3, clock=clock)
    assert result.results["a"].samples == (2 * unit, 3 * unit, 4 * unit)
    assert result.results["b"].samples == (20 * unit, 30 * unit, 40 * unit)
    assert all(r.warmup == 1 and r.number == 1 for r in result.results.values())


def test_metrics_see_one_extra_untimed_call_of_each_variant(clock, scripted, unit):
    a, b = scripted([1] * 4, name="a"), scripted([2] * 4, name="b")
    seen = []

    def metrics(name, output):
        seen.append((name, output))
        return {"calls before": output, "half": output / 2}

    result = compare({"a": a, "b": b}, warmup=1, repeats=2, metrics=metrics, clock=clock)
    # each variant: 1 warm-up + 2 timed calls (indices 0-2), then the metrics call (3)
    assert seen == [("a", 3), ("b", 3)]
    assert result.metrics == {"a": {"calls before": 3, "half": 1.5},
                              "b": {"calls before": 3, "half": 1.5}}
    assert type(result.metrics["a"]["calls before"]) is int
    assert result.results["a"].samples == (unit, unit)       # the extra call is not timed
    assert result.metric_names() == ["calls before", "half"]


def test_benchmark_holds_settings_for_many_runs(clock, scripted, unit):
    bench = Benchmark(warmup=1, repeats=2, number=2, clock=clock)
    one = bench.run(scripted([9, 1, 1, 3, 3]), name="one")
    both = bench.compare({"x": scripted([9, 4, 4, 4, 4]), "y": scripted([9, 1, 1, 1, 1])})
    assert one.samples == (unit, 3 * unit)
    assert both.speedups == {"x": 1.0, "y": 4.0}


# ---- reports --------------------------------------------------------------------------------

def fixed_comparison():
    """A comparison with fixed samples (seconds per call) and metrics."""
    float32 = BenchmarkResult(samples=(0.004, 0.005, 0.008), number=10, name="float32",
                              warmup=2)
    int8 = BenchmarkResult(samples=(0.001, 0.002, 0.004), number=10, name="int8", warmup=2)
    return Comparison(title="digits MLP", baseline="float32",
                      results={"float32": float32, "int8": int8},
                      metrics={"float32": {"accuracy": 0.975, "bytes": 9640},
                               "int8": {"accuracy": 35 / 36, "bytes": 2620}})


SETTINGS = ("3 samples of 10 call(s) per variant after 2 warm-up call(s), variants run "
            "round-robin; speed-up = median of float32 / median")


def test_markdown_table_of_a_fixed_comparison():
    assert fixed_comparison().to_markdown() == (
        "### digits MLP\n"
        "\n"
        "| variant | median | mean | stdev | IQR | min | speed-up vs float32 | accuracy | bytes |\n"
        "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        "| float32 | 5.0 ms | 5.7 ms | 2.1 ms | 2.0 ms | 4.0 ms | 1.00x | 0.975 | 9,640 |\n"
        "| int8 | 2.0 ms | 2.3 ms | 1.5 ms | 1.5 ms | 1.0 ms | 2.50x | 0.9722 | 2,620 |\n"
        "\n"
        + SETTINGS + "\n")


def test_text_table_of_a_fixed_comparison():
    expected = "\n".join([
        "digits MLP",
        "variant  median    mean   stdev     IQR     min  speed-up vs float32  accuracy  bytes",
        "-------  ------  ------  ------  ------  ------  -------------------  --------  -----",
        "float32  5.0 ms  5.7 ms  2.1 ms  2.0 ms  4.0 ms                1.00x     0.975  9,640",
        "int8     2.0 ms  2.3 ms  1.5 ms  1.5 ms  1.0 ms                2.50x    0.9722  2,620",
        SETTINGS])
    comparison = fixed_comparison()
    assert comparison.to_text() == expected
    assert str(comparison) == expected


def test_a_variant_without_a_metric_gets_an_empty_cell():
    comparison = fixed_comparison()
    del comparison.metrics["int8"]["bytes"]
    assert comparison.to_markdown().splitlines()[5] == (
        "| int8 | 2.0 ms | 2.3 ms | 1.5 ms | 1.5 ms | 1.0 ms | 2.50x | 0.9722 |  |")


def test_json_round_trip_is_exact():
    comparison = fixed_comparison()
    assert Comparison.from_json(comparison.to_json()) == comparison


def test_json_of_a_real_measurement_round_trips_sample_for_sample():
    # perf_counter differences: arbitrary floats, none of them "nice"
    result = compare({"sum": (sum, (range(100),)), "max": (max, (range(100),))}, warmup=1,
                     repeats=5, metrics=lambda name, out: {"value": out})
    loaded = Comparison.from_json(result.to_json())
    assert loaded == result
    assert loaded.results["sum"].samples == result.results["sum"].samples
    assert loaded.metrics == {"sum": {"value": 4950}, "max": {"value": 99}}


def test_json_structure_names_every_number():
    data = json.loads(fixed_comparison().to_json())
    assert data["title"] == "digits MLP" and data["baseline"] == "float32"
    assert [v["name"] for v in data["variants"]] == ["float32", "int8"]
    int8 = data["variants"][1]
    assert int8["samples"] == [0.001, 0.002, 0.004]
    assert (int8["warmup"], int8["number"], int8["repeats"]) == (2, 10, 3)
    assert int8["speedup"] == 0.005 / 0.002
    assert int8["metrics"] == {"accuracy": 35 / 36, "bytes": 2620}
    assert set(int8["stats"]) == {"median", "mean", "stdev", "min", "max", "p25", "p75",
                                  "iqr", "p90", "p99"}
    assert int8["stats"]["median"] == 0.002 and int8["stats"]["min"] == 0.001


def test_save_and_load_json(tmp_path):
    comparison = fixed_comparison()
    path = comparison.save_json(tmp_path / "digits.json")
    assert path == tmp_path / "digits.json"
    assert Comparison.load_json(path) == comparison
    assert json.loads(path.read_text())["title"] == "digits MLP"


# ---- the suite -------------------------------------------------------------------------------

ENV = {"python": "3.11.7", "numpy": "2.0.0", "cpus": 2}


def test_suite_markdown_has_the_environment_and_every_comparison():
    suite = BenchmarkSuite("TinyTorch optimizations", environment=dict(ENV))
    suite.add(fixed_comparison())
    table = fixed_comparison().to_markdown(level=2)
    assert suite.to_markdown() == (
        "# TinyTorch optimizations\n"
        "\n"
        "Measured on: python 3.11.7, numpy 2.0.0, cpus 2\n"
        "\n" + table)
    assert table.startswith("## digits MLP\n")


def test_suite_text_joins_the_comparisons():
    suite = BenchmarkSuite("S", environment=dict(ENV))
    suite.add(fixed_comparison())
    assert suite.to_text() == ("S\n\nMeasured on: python 3.11.7, numpy 2.0.0, cpus 2\n\n"
                               + fixed_comparison().to_text())


def test_suite_runs_comparisons_and_round_trips(clock, scripted, tmp_path, unit):
    suite = BenchmarkSuite("two runs", environment=dict(ENV))
    first = suite.compare("first", {"a": scripted([2] * 3), "b": scripted([1] * 3)},
                          warmup=1, repeats=2, clock=clock)
    suite.compare("second", {"c": scripted([4] * 3)}, warmup=0, repeats=3, clock=clock)
    assert suite["first"] is first and first.speedups == {"a": 1.0, "b": 2.0}
    assert [c.title for c in suite.comparisons] == ["first", "second"]
    assert suite["second"].results["c"].samples == (4 * unit,) * 3

    json_path, markdown_path = suite.save(tmp_path / "report", stem="run")
    assert (json_path.name, markdown_path.name) == ("run.json", "run.md")
    assert BenchmarkSuite.load_json(json_path) == suite
    assert BenchmarkSuite.from_json(suite.to_json()) == suite
    assert markdown_path.read_text() == suite.to_markdown()


def test_a_new_suite_records_where_it_runs(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    env = BenchmarkSuite("x").environment
    assert set(env) == {"python", "numpy", "platform", "machine", "cpus", "blas_threads"}
    assert env["python"].count(".") == 2 and isinstance(env["cpus"], int)
    assert env["blas_threads"] == "3"
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    assert BenchmarkSuite("y").environment["blas_threads"] == "unset"


# ---- markers ---------------------------------------------------------------------------------

@pytest.mark.export_import
def test_export_provides_the_public_api(export_api):
    found = export_api("tinytorch.benchmarking", API)
    assert issubclass(found["BenchmarkResult"], LatencyResult)
    assert issubclass(found["BenchmarkError"], RuntimeError)


@pytest.mark.api_consistency
def test_functions_and_benchmark_share_settings_and_defaults():
    defaults = {"warmup": 3, "repeats": 20, "number": 1, "clock": time.perf_counter}
    for fn in (run_benchmark, compare):
        params = inspect.signature(fn).parameters
        assert {k: params[k].default for k in defaults} == defaults
        assert params["setup"].default is None
    assert Benchmark() == Benchmark(**defaults)
    assert list(inspect.signature(run_benchmark).parameters)[:6] == [
        "fn", "warmup", "repeats", "number", "setup", "clock"]


@pytest.mark.api_consistency
def test_reports_share_one_interface(tmp_path):
    suite = BenchmarkSuite("s", environment=dict(ENV))
    suite.add(fixed_comparison())
    for report in (fixed_comparison(), suite):
        cls = type(report)
        assert cls.from_dict(report.to_dict()) == report
        assert cls.from_json(report.to_json()) == report
        assert cls.load_json(report.save_json(tmp_path / f"{cls.__name__}.json")) == report
        assert str(report) == report.to_text()
        assert report.to_markdown().startswith("#")
    result = fixed_comparison().results["int8"]
    assert BenchmarkResult.from_dict(result.to_dict()) == result


@pytest.mark.api_consistency
def test_run_benchmark_equals_benchmark_run_and_compare_of_one(clock, scripted):
    durations = [3, 1, 4, 1, 5]
    a = run_benchmark(scripted(durations), warmup=1, repeats=4, clock=clock, name="f")
    b = Benchmark(warmup=1, repeats=4, clock=clock).run(scripted(durations), name="f")
    c = compare({"f": scripted(durations)}, warmup=1, repeats=4, clock=clock).results["f"]
    assert a == b == c
