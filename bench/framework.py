"""TinyTorch against PyTorch (CPU) on the same shapes, side by side in one run.

    python bench/framework.py [--repeat 15]

Cases (forward + backward unless named otherwise):
  linear      Linear(512 -> 512), batch 256
  conv2d      Conv2d(3 -> 16, 3x3, padding 1), batch 32 of 3x32x32
  attention   multi-head self-attention, B=8, T=64, C=128, 4 heads
  gpt_step    one training step (forward, backward, Adam update) of a 2-layer GPT,
              n_embd 64, 4 heads, block 32, batch 16, char vocabulary 96
Each case alternates the two frameworks repeat times and compares medians. The
ratio is TinyTorch time / PyTorch time (lower is better; 1.0 = as fast). Without
torch installed it prints TinyTorch's times and `name: n/a`. Goals: linear <= 1.5,
conv2d <= 3, gpt_step <= 3.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def export_everything() -> None:
    from orchestrator.core.graph import load
    from orchestrator.run.pytest_plugin import export_all
    failures = export_all(load(REPO))
    if failures:
        sys.exit(f"bench: export failed: {failures}")


def median_time(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def side_by_side(ours, theirs, repeat: int) -> tuple[float, float | None]:
    """Warm both up, then alternate them so machine noise hits both alike."""
    ours()
    if theirs:
        theirs()
    a, b = [], []
    for _ in range(repeat):
        a.append(median_time(ours, 1))
        if theirs:
            b.append(median_time(theirs, 1))
    return statistics.median(a), (statistics.median(b) if theirs else None)


# ---- the cases: each returns (tinytorch step, torch step or None) --------------------------

def linear_case(torch):
    from tinytorch.core import autograd  # noqa: F401  (installs gradients)
    from tinytorch.core.layers import Linear
    from tinytorch.core.tensor import Tensor
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((256, 512)).astype(np.float32)
    layer = Linear(512, 512, seed=0)

    def ours():
        layer.zero_grad()
        x = Tensor(x_np, requires_grad=True)
        layer(x).sum().backward()

    if torch is None:
        return ours, None
    t_layer = torch.nn.Linear(512, 512)
    t_x = torch.tensor(x_np)

    def theirs():
        t_layer.zero_grad()
        x = t_x.clone().requires_grad_(True)
        t_layer(x).sum().backward()
    return ours, theirs


def conv2d_case(torch):
    from tinytorch.core import autograd  # noqa: F401
    from tinytorch.core.spatial import Conv2d
    from tinytorch.core.tensor import Tensor
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    conv = Conv2d(3, 16, 3, padding=1, seed=0)

    def ours():
        conv.zero_grad()
        x = Tensor(x_np, requires_grad=True)
        conv(x).sum().backward()

    if torch is None:
        return ours, None
    t_conv = torch.nn.Conv2d(3, 16, 3, padding=1)
    t_x = torch.tensor(x_np)

    def theirs():
        t_conv.zero_grad()
        x = t_x.clone().requires_grad_(True)
        t_conv(x).sum().backward()
    return ours, theirs


def attention_case(torch):
    from tinytorch.core import autograd  # noqa: F401
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.attention import MultiHeadAttention
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((8, 64, 128)).astype(np.float32)
    attn = MultiHeadAttention(128, 4, seed=0)

    def ours():
        attn.zero_grad()
        x = Tensor(x_np, requires_grad=True)
        attn(x, is_causal=True).sum().backward()

    if torch is None:
        return ours, None
    t_attn = torch.nn.MultiheadAttention(128, 4, batch_first=True)
    t_x = torch.tensor(x_np)
    mask = torch.triu(torch.ones(64, 64, dtype=torch.bool), diagonal=1)

    def theirs():
        t_attn.zero_grad()
        x = t_x.clone().requires_grad_(True)
        out, _ = t_attn(x, x, x, attn_mask=mask, need_weights=False)
        out.sum().backward()
    return ours, theirs


def gpt_case(torch):
    from tinytorch.core import autograd  # noqa: F401
    from tinytorch.core.optimizers import Adam
    from tinytorch.models.transformer import GPT, GPTConfig
    rng = np.random.default_rng(0)
    vocab, block, batch = 96, 32, 16
    idx = rng.integers(0, vocab, size=(batch, block))
    targets = rng.integers(0, vocab, size=(batch, block))
    config = GPTConfig(vocab_size=vocab, block_size=block, n_layer=2, n_head=4, n_embd=64,
                       dropout=0.0, seed=0)
    model = GPT(config)
    optimizer = Adam(model.parameters(), lr=1e-3)

    def ours():
        optimizer.zero_grad()
        _, loss = model(idx, targets)
        loss.backward()
        optimizer.step()

    if torch is None:
        return ours, None
    t_model = TorchGPT(torch, vocab, block, n_layer=2, n_head=4, n_embd=64)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=1e-3)
    t_idx, t_targets = torch.tensor(idx), torch.tensor(targets)

    def theirs():
        t_opt.zero_grad()
        logits = t_model(t_idx)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), t_targets.reshape(-1))
        loss.backward()
        t_opt.step()
    return ours, theirs


def TorchGPT(torch, vocab, block, n_layer, n_head, n_embd):
    """The same pre-norm decoder in PyTorch, built from its own layers."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
            self.attn = nn.MultiheadAttention(n_embd, n_head, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * n_embd, n_embd))
            self.register_buffer("mask", torch.triu(torch.ones(block, block, dtype=torch.bool), 1))

        def forward(self, x):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=self.mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, n_embd), nn.Embedding(block, n_embd)
            self.blocks = nn.Sequential(*[Block() for _ in range(n_layer)])
            self.ln, self.head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
            return self.head(self.ln(self.blocks(x)))

    return Model()


CASES = {"linear": linear_case, "conv2d": conv2d_case, "attention": attention_case,
         "gpt_step": gpt_case}
GOALS = {"linear": 1.5, "conv2d": 3.0, "gpt_step": 3.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    export_everything()
    try:
        import torch
        torch.manual_seed(0)
        version = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        torch, version = None, "torch not installed"
    print(f"TinyTorch vs PyTorch ({version}), medians of {args.repeat} alternating runs")
    ratios = {}
    for name, case in CASES.items():
        ours, theirs = case(torch)
        t_ours, t_theirs = side_by_side(ours, theirs, args.repeat)
        ratio = None if t_theirs is None else t_ours / t_theirs
        ratios[name] = ratio
        goal = f"(goal <= {GOALS[name]})" if name in GOALS else ""
        theirs_text = "-" if t_theirs is None else f"{t_theirs * 1e3:9.2f} ms"
        ratio_text = "n/a" if ratio is None else f"{ratio:.2f}x"
        print(f"  {name:10} tinytorch {t_ours * 1e3:9.2f} ms   torch {theirs_text:>12}   "
              f"ratio {ratio_text} {goal}")
    for name, ratio in ratios.items():
        print(f"{name}: {'n/a' if ratio is None else round(ratio, 2)}")


if __name__ == "__main__":
    main()
