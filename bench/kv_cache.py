"""KV cache: GPT generation with and without tinytorch.memoization's cache, side by side.

    python bench/kv_cache.py [--repeat 3]

A GPT with random weights (its speed does not depend on what it learned): 4 layers,
4 heads, n_embd 128, block_size 512, vocabulary 96, 0.8M parameters. From an 8-token
prompt it generates 64, 128 and 256 tokens with `model.generate` (no cache: every step
runs the whole context) and with `generate_cached` (each step feeds one token), sampling
at temperature 1 with seed 0. The two alternate `repeat` times; the table shows medians.
Every run's tokens must be identical (otherwise the bench stops with an error). The last
line is `kv_cache_speedup_256: X`, X = uncached time / cached time for 256 tokens
(goal >= 5).

The timing lives here only: the test suite never compares times (a busy machine can
flip them). tests/17_memoization counts the work instead, the same on every machine:
token rows through every Linear layer, and attention scores.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LENGTHS = (64, 128, 256)
PROMPT = np.arange(1, 9)[None]          # (1, 8) token ids
GOAL = 5.0


def export_closure(module_id: str = "17_memoization") -> None:
    """framework.py's export_everything(), limited to the module and what it builds on:
    a later module that does not export yet must not stop this bench."""
    from orchestrator.core.export import ExportError, export_module, is_current
    from orchestrator.core.graph import load
    graph = load(REPO)
    for mid in graph.closure(module_id) + [module_id]:
        if is_current(graph[mid], graph):
            continue
        try:
            export_module(graph[mid], graph)
        except ExportError as error:
            sys.exit(f"bench: export of {mid} failed: {error}")


def build_model():
    from tinytorch.models.transformer import GPT, GPTConfig
    config = GPTConfig(vocab_size=96, block_size=512, n_layer=4, n_head=4, n_embd=128, seed=0)
    return GPT(config).eval()


def timed(generate, model, new_tokens):
    """(seconds, tokens) of one generation."""
    start = time.perf_counter()
    tokens = generate(model, PROMPT, new_tokens, temperature=1.0, seed=0).data
    return time.perf_counter() - start, tokens


def side_by_side(model, new_tokens, repeat):
    """Median seconds (uncached, cached): warm both up, then alternate them so machine
    noise hits both alike; every run must produce the same tokens."""
    from tinytorch.memoization import generate_cached
    uncached, cached = type(model).generate, generate_cached
    _, expected = timed(uncached, model, new_tokens)
    timed(cached, model, new_tokens)
    slow, fast = [], []
    for _ in range(repeat):
        for generate, times in ((uncached, slow), (cached, fast)):
            seconds, tokens = timed(generate, model, new_tokens)
            if not np.array_equal(tokens, expected):
                sys.exit(f"bench: {generate.__name__} produced different tokens for "
                         f"{new_tokens} new tokens")
            times.append(seconds)
    return statistics.median(slow), statistics.median(fast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    export_closure()
    from tinytorch.memoization import KVCache
    model = build_model()
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"GPT 4 layers x 4 heads, n_embd 128, block 512, {model.num_parameters()} parameters; "
          f"prompt {PROMPT.shape[1]} tokens; medians of {args.repeat} alternating runs "
          f"(OPENBLAS_NUM_THREADS={threads})")
    print(f"  {'new tokens':>10}  {'uncached':>10}  {'cached':>10}  {'ms/token':>17}  "
          f"{'cache memory':>12}  {'speed-up':>8}  tokens")
    speedups = {}
    for new_tokens in LENGTHS:
        slow, fast = side_by_side(model, new_tokens, args.repeat)
        speedups[new_tokens] = slow / fast
        fed = PROMPT.shape[1] + new_tokens - 1
        memory = KVCache.for_model(model, batch_size=1, max_len=fed).memory_bytes()
        per_token = f"{slow / new_tokens * 1e3:6.2f} -> {fast / new_tokens * 1e3:6.2f}"
        print(f"  {new_tokens:>10}  {slow:>9.3f}s  {fast:>9.3f}s  {per_token:>17}  "
              f"{memory / 2**20:>8.2f} MiB  {slow / fast:>7.1f}x  identical")
    print(f"goal: speed-up >= {GOAL} for 256 tokens")
    print(f"kv_cache_speedup_256: {speedups[256]:.2f}")


if __name__ == "__main__":
    main()
