"""Module 19 on top of 14-18 (and the modules under them): what importing it loads,
and the harness running the earlier modules' code without changing what it computes."""

import numpy as np

from tinytorch.benchmarking import compare, run_benchmark
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck, is_grad_enabled
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor
from tinytorch.data.dataloader import DataLoader, TensorDataset


def test_importing_benchmarking_loads_exactly_its_closure(loaded_modules):
    # the harness builds on module 14 only (LatencyResult, format_seconds), so it loads
    # profiling's closure: 01, 02, 03, 05 and 09. Quantization, compression, the KV
    # cache and acceleration are what it measures, not what it needs.
    assert loaded_modules("tinytorch.benchmarking") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.autograd", "tinytorch.core.spatial", "tinytorch.profiling",
        "tinytorch.benchmarking"}


def test_gradients_still_check_after_benchmarking_a_model(rng):
    model = Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 2, seed=1))
    x = Tensor(rng.standard_normal((5, 3)))
    run_benchmark(lambda: model(x).sum().backward(), warmup=1, repeats=2)
    assert is_grad_enabled()
    assert gradcheck(lambda *ps: (model(x) * model(x)).sum(), model.parameters()) < 1e-5


def test_dataloader_batch_sizes_as_variants(rng):
    # module 08: one epoch at three batch sizes; metrics count what each epoch delivered
    data = TensorDataset(rng.standard_normal((100, 4)).astype(np.float32),
                         np.arange(100))
    loaders = {f"batch {b}": DataLoader(data, batch_size=b) for b in (1, 10, 32)}

    def epoch(loader):
        return [labels for _, labels in loader]

    result = compare({name: (epoch, (loader,)) for name, loader in loaders.items()},
                     warmup=1, repeats=3, metrics=lambda name, batches: {
                         "batches": len(batches),
                         "samples": int(sum(len(b) for b in batches))})
    assert result.metrics == {"batch 1": {"batches": 100, "samples": 100},
                              "batch 10": {"batches": 10, "samples": 100},
                              "batch 32": {"batches": 4, "samples": 100}}


def test_each_module_from_15_to_18_runs_unchanged_under_the_harness(rng):
    from tinytorch.acceleration import matmul_row_loop, matmul_vectorized
    from tinytorch.compression import magnitude_mask
    from tinytorch.memoization import generate_cached
    from tinytorch.models.transformer import GPT, GPTConfig
    from tinytorch.quantization import choose_qparams, dequantize, quantize

    a, b = rng.standard_normal((6, 5)), rng.standard_normal((5, 3))
    w = rng.standard_normal((8, 8)).astype(np.float32)
    scale, zero = choose_qparams(w)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=1, n_head=2, n_embd=8, seed=0))
    prompt = np.array([[1, 2, 3]])

    outputs = {}

    def keep(name, output):
        outputs[name] = output
        return {}

    compare({"rows": (matmul_row_loop, (a, b)), "blas": (matmul_vectorized, (a, b)),
             "int8": (lambda: dequantize(quantize(w, scale, zero), scale, zero), ()),
             "mask": (magnitude_mask, (w, 0.5)),
             "generate": (lambda: gpt.generate(prompt, 6, greedy=True), ()),
             "cached": (lambda: generate_cached(gpt, prompt, 6, greedy=True), ())},
            warmup=1, repeats=2, metrics=keep)
    np.testing.assert_allclose(outputs["rows"], a @ b, rtol=1e-12)
    np.testing.assert_array_equal(outputs["blas"], a @ b)
    assert np.abs(outputs["int8"] - w).max() <= scale / 2 + 1e-7      # half a step
    assert outputs["mask"].sum() == 32                                 # half of 64 kept
    np.testing.assert_array_equal(outputs["cached"].data, outputs["generate"].data)
