"""Real-world usage: TinyGPT learns the shipped corpus (the Python Language Reference)
well below the unigram baseline, and the command line trains, saves, and generates text
(float and int8) in a fresh interpreter, exactly as a user runs it."""
import math
import re
from collections import Counter

import numpy as np
import pytest

from tinytorch.applications.tinygpt import evaluate_loss, generate_text, load_tinygpt, unigram_loss

CLI_TINY = ["--block-size", 16, "--n-layer", 1, "--n-head", 2, "--n-embd", 16, "--lr", 0.02,
            "--eval-windows", 64, "--seed", 0]
FINAL = re.compile(r"final: train loss (\S+), val loss (\S+) nats/token \(unigram baseline "
                   r"(\S+)\) after (\d+) steps in (\S+) s")
INT8 = re.compile(r"int8: Linear layers ([\d,]+) -> ([\d,]+) bytes \((\S+)x smaller\); whole "
                  r"model ([\d,]+) -> ([\d,]+) bytes")


def unigram_nats(train_text, val_text):
    """Cross-entropy of the character frequencies of train_text (add-one over the
    vocabulary: 4 special ids + the corpus characters) on val_text."""
    counts = Counter(train_text)
    vocab = 4 + len(set(train_text) | set(val_text))
    total = len(train_text) + vocab
    return -sum(math.log((counts[c] + 1) / total) for c in val_text) / len(val_text)


@pytest.fixture(scope="module")
def cli_model(run_cli, tmp_path_factory):
    """A model trained by the command line: (its directory, the finished process)."""
    out = tmp_path_factory.mktemp("cli") / "tinygpt"
    return out, run_cli("train", "--steps", 30, "--out", out, *CLI_TINY)


def test_the_trained_model_beats_the_unigram_baseline(trained, corpus):
    split = len(corpus["train"])
    baseline = unigram_nats(corpus["text"][:split], corpus["text"][split:])
    val = evaluate_loss(trained["model"], corpus["val"], max_windows=10_000)   # all of it
    # measured: unigram 3.2375 nats/char; after 150 steps (6,992 parameters, < 1 s) the
    # model scores 2.3788 on all 2,906 validation windows (2.4595 on the 128 sampled ones)
    assert baseline == pytest.approx(unigram_loss(corpus["train"], corpus["val"], 107))
    assert 3.2 < baseline < 3.3
    assert val < baseline - 0.6
    assert trained["history"]["val_loss"][-1] == pytest.approx(val, abs=0.15)


def test_the_trained_model_writes_corpus_like_text(trained):
    text = generate_text(trained["model"], trained["tokenizer"], "The ", 300, temperature=0.8,
                         seed=0)[4:]
    words = text.split()
    # measured: 94% letters or spaces, mean word length 4.1 (the corpus: 88%, 5.6)
    assert sum(c.isalpha() or c.isspace() for c in text) / len(text) > 0.7
    assert 2 < np.mean([len(w) for w in words]) < 8


def test_cli_train_reports_losses_below_the_baseline_and_saves(cli_model):
    out, result = cli_model
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("data: 465,048 characters -> 418,543 training and 46,505 validation "
                        "tokens (CharTokenizer, vocab 107)")
    assert lines[1] == "model: GPT, 1 layers, 2 heads, 16 channels, block 16: 6,992 parameters"
    train_loss, val_loss, baseline, steps, seconds = FINAL.fullmatch(lines[2]).groups()
    # measured (seed 0, lr 0.02, 30 steps): train 3.0767, val 3.0348, baseline 3.2375
    assert float(baseline) == pytest.approx(3.2375, abs=1e-4) and steps == "30"
    assert float(val_loss) < float(baseline) and float(train_loss) < math.log(107) - 1
    assert lines[3] == f"saved: {out}"
    assert result.stderr.startswith("step 30/30 [####################] loss ")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.npz",
                                                     "tokenizer.json"]
    model, tokenizer, config = load_tinygpt(out)
    assert config["results"]["val_loss"] == pytest.approx(float(val_loss), abs=1e-4)
    assert config["train"]["steps"] == 30 and len(config["calibration_text"]) == 64


def test_cli_generate_prints_the_prompt_and_its_continuation(cli_model, run_cli):
    out, _ = cli_model
    args = ["generate", "--model", out, "--prompt", "The ", "--tokens", 40, "--seed", 1]
    first, again = run_cli(*args), run_cli(*args)
    assert first.returncode == 0 and first.stderr == ""
    text = first.stdout[:-1]                                  # print() adds the newline
    assert text.startswith("The ") and len(text) == 44 and first.stdout == again.stdout
    model, tokenizer, _ = load_tinygpt(out)
    assert text == generate_text(model, tokenizer, "The ", 40, seed=1)
    uncached = run_cli(*args, "--no-cache")
    assert uncached.stdout == first.stdout


def test_cli_generate_int8_reports_the_measured_bytes(cli_model, run_cli):
    out, _ = cli_model
    result = run_cli("generate", "--model", out, "--prompt", "def ", "--tokens", 20,
                            "--greedy", "--int8")
    assert result.returncode == 0, result.stderr
    before, after, ratio, model_before, model_after = INT8.fullmatch(
        result.stderr.strip()).groups()

    def to_int(s):
        return int(s.replace(",", ""))
    # 1 block of 16 channels + the LM head: 4 bytes per weight and bias before; after,
    # 1 byte per weight plus float32 biases, scales and 8 bytes of input qparams per layer
    assert to_int(before) == 4 * (4 * 16 * 16 + 2 * 16 * 64 + 16 * 107 + 4 * 16 + 64 + 16)
    assert to_int(after) == (4 * 16 * 16 + 2 * 16 * 64 + 16 * 107) + 4 * (
        2 * (4 * 16 + 64 + 16) + 107) + 8 * 7
    assert float(ratio) == pytest.approx(to_int(before) / to_int(after), abs=0.005)
    assert to_int(model_before) - to_int(model_after) == to_int(before) - to_int(after)
    assert result.stdout.startswith("def ") and len(result.stdout) == 4 + 20 + 1
