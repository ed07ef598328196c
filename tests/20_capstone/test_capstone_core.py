"""Core: TinyGPT's data preparation, loss measurement, training step and loop, progress
line, checkpoint directory and text generation, each checked against hand-computed values."""
import io
import math

import numpy as np
import pytest

from tinytorch.applications.tinygpt import (
    CORPUS_PATH,
    TrainConfig,
    encode_prompt,
    evaluate_loss,
    evaluation_starts,
    generate_text,
    get_batch,
    load_tinygpt,
    progress_bar,
    save_tinygpt,
    split_ids,
    train,
    train_step,
    unigram_loss,
    windows,
)
from tinytorch.core.autograd import no_grad
from tinytorch.core.optimizers import AdamW
from tinytorch.text.tokenization import CharTokenizer

# ---- data ---------------------------------------------------------------------------

def test_the_corpus_is_found_from_the_exported_file():
    assert CORPUS_PATH.is_file() and CORPUS_PATH.name == "python_reference.txt"
    assert CORPUS_PATH.parent.name == "corpus" and CORPUS_PATH.parents[1].name == "data"


def test_split_takes_the_first_part_for_training_and_the_last_for_validation():
    train_ids, val_ids = split_ids(np.arange(10), val_fraction=0.2)
    np.testing.assert_array_equal(train_ids, np.arange(8))
    np.testing.assert_array_equal(val_ids, [8, 9])
    assert train_ids.dtype == np.int64


def test_the_corpus_splits_90_10(corpus):
    n = len(corpus["text"])                                   # one id per character
    assert len(corpus["train"]) == round(0.9 * n) and len(corpus["train"]) + len(corpus["val"]) == n
    val_text = corpus["text"][len(corpus["train"]):]
    assert corpus["tokenizer"].decode(corpus["val"][:22]) == val_text[:22]


def test_windows_targets_are_the_inputs_one_token_later():
    ids = np.arange(20) * 3
    x, y = windows(ids, np.array([0, 5]), block_size=4)
    np.testing.assert_array_equal(x, [[0, 3, 6, 9], [15, 18, 21, 24]])
    np.testing.assert_array_equal(y, [[3, 6, 9, 12], [18, 21, 24, 27]])


@pytest.mark.shape
def test_get_batch_shapes_and_windows_inside_the_data():
    ids = np.arange(50)
    x, y = get_batch(ids, batch_size=200, block_size=7, rng=np.random.default_rng(0))
    assert x.shape == y.shape == (200, 7)
    np.testing.assert_array_equal(x[:, 1:] - x[:, :-1], 1)   # consecutive tokens
    np.testing.assert_array_equal(y, x + 1)
    assert x.min() == 0 and y.max() == 49                     # both ends are reachable


def test_get_batch_is_repeatable_with_a_seed():
    ids = np.arange(1000)
    a = get_batch(ids, 4, 8, np.random.default_rng(3))[0]
    b = get_batch(ids, 4, 8, np.random.default_rng(3))[0]
    c = get_batch(ids, 4, 8, np.random.default_rng(4))[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a[:, 0], np.random.default_rng(3).integers(0, 992, 4))


def test_unigram_loss_by_hand():
    # counts + 1 = [3, 2, 1] over 6: val ids 0 and 1 cost -ln(1/2) and -ln(1/3)
    expected = (math.log(2) + math.log(3)) / 2
    assert unigram_loss(np.array([0, 0, 1]), np.array([0, 1]), 3) == pytest.approx(expected)


# ---- measuring the loss -------------------------------------------------------------

def test_evaluation_windows_are_non_overlapping_and_evenly_spread():
    np.testing.assert_array_equal(evaluation_starts(100, 10), np.arange(0, 90, 10))
    np.testing.assert_array_equal(evaluation_starts(100, 10, max_windows=3), [0, 40, 80])
    np.testing.assert_array_equal(evaluation_starts(11, 10), [0])     # the target of 9 is 10
    assert len(evaluation_starts(10, 10)) == 0


def test_evaluate_loss_is_the_mean_cross_entropy_of_its_windows(make_gpt, corpus, spread):
    model = spread(make_gpt())
    ids = corpus["val"][:16 * 40 + 1]
    x, y = windows(ids, evaluation_starts(len(ids), 16, max_windows=25), 16)
    with no_grad():
        logits = model(x)[0].data.astype(np.float64)             # (25, 16, vocab)
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, y[..., None], -1).mean()
    model.train()
    loss = evaluate_loss(model, ids, max_windows=25, batch_size=7)     # 4 batches
    assert loss == pytest.approx(expected, rel=1e-5)
    assert model.training                                        # its mode is put back


# ---- one training step --------------------------------------------------------------

def test_train_step_returns_the_loss_and_the_gradient_norm(make_gpt, corpus):
    model = make_gpt()
    x, y = get_batch(corpus["train"], 4, 16, np.random.default_rng(0))
    with no_grad():
        expected_loss = model(x, y)[1].item()
    before = [p.data.copy() for p in model.parameters()]
    loss, norm = train_step(model, AdamW(model.parameters(), lr=1e-3), x, y, grad_clip=1e9)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    grads = [p.grad.data.astype(np.float64) for p in model.parameters()]
    assert norm == pytest.approx(math.sqrt(sum((g * g).sum() for g in grads)), rel=1e-6)
    assert all(not np.array_equal(b, p.data) for b, p in zip(before, model.parameters()))
    assert train_step(model, AdamW(model.parameters()), x, y)[1] is None    # no clipping


def test_train_step_clips_the_global_gradient_norm(make_gpt, corpus):
    model = make_gpt()
    x, y = get_batch(corpus["train"], 4, 16, np.random.default_rng(0))
    norm = train_step(model, AdamW(model.parameters(), lr=0.0), x, y, grad_clip=0.01)[1]
    clipped = math.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum())
                            for p in model.parameters()))
    assert norm > 0.5                                           # measured: 1.215 at init
    assert clipped == pytest.approx(0.01, rel=1e-4)


# ---- the training loop --------------------------------------------------------------

def test_learning_rate_follows_the_cosine_from_lr_to_min_lr(make_gpt, corpus):
    config = TrainConfig(steps=4, lr=1e-2, min_lr=1e-3, eval_every=1, eval_windows=2)
    history = train(make_gpt(), corpus["train"], corpus["val"], config)
    # lr at step s (1-based) = 1e-3 + 9e-3 * (1 + cos(pi (s - 1) / 4)) / 2
    np.testing.assert_allclose(history["lr"], [0.01, 0.0086819805, 0.0055, 0.0023180195],
                               rtol=1e-7)
    assert history["step"] == [1, 2, 3, 4] and len(history["loss"]) == 4


def test_training_history_and_progress_lines(make_gpt, corpus):
    progress = io.StringIO()
    config = TrainConfig(steps=6, eval_every=3, eval_windows=4)
    history = train(make_gpt(), corpus["train"], corpus["val"], config, progress=progress)
    lines = progress.getvalue().splitlines()
    assert [line.split(" [")[0] for line in lines] == ["step 3/6", "step 6/6"]
    assert lines[1].startswith("step 6/6 [####################] loss ")
    assert f"val {history['val_loss'][-1]:.4g} " in lines[1] and lines[1].endswith("s")
    assert history["step"] == [3, 6] and len(history["loss"]) == 6
    assert history["time"][0] <= history["time"][1]


def test_progress_bar_format():
    line = progress_bar(100, 500, {"loss": 2.41234, "val": 2.5}, elapsed=12.34)
    assert line == "step 100/500 [####................] loss 2.412 val 2.5 12.3s"
    assert progress_bar(7, 10, {}, 0.0, width=10) == "step  7/10 [#######...] 0.0s"


def test_a_tiny_model_learns_the_corpus(trained, corpus):
    history = trained["history"]
    vocab = corpus["tokenizer"].vocab_size
    assert history["loss"][0] == pytest.approx(math.log(vocab), abs=0.05)   # uniform at init
    assert history["val_loss"][-1] < 2.7                        # measured: 2.459 after 150 steps
    assert np.mean(history["loss"][-10:]) < np.mean(history["loss"][:10]) - 1.5


# ---- checkpoint directory -----------------------------------------------------------

def test_save_and_load_give_identical_logits(trained, corpus, tmp_path):
    model, tokenizer = trained["model"], trained["tokenizer"]
    save_tinygpt(tmp_path / "run", model, tokenizer, {"note": "hello"})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "config.json", "model.npz", "tokenizer.json"]
    loaded, loaded_tokenizer, config = load_tinygpt(tmp_path / "run")
    x, _ = get_batch(corpus["val"], 3, 16, np.random.default_rng(0))
    with no_grad():
        np.testing.assert_array_equal(loaded(x)[0].data, model(x)[0].data)
    assert loaded.config == model.config and not loaded.training
    assert loaded_tokenizer.chars == tokenizer.chars and config["note"] == "hello"
    assert config["tokenizer"] == "CharTokenizer" and config["model"]["n_embd"] == 16


def test_saving_again_replaces_the_model_and_leaves_no_temporary_files(make_gpt, corpus,
                                                                       tmp_path):
    first, second = make_gpt(seed=1), make_gpt(seed=2)
    save_tinygpt(tmp_path / "run", first, corpus["tokenizer"])
    save_tinygpt(tmp_path / "run", second, corpus["tokenizer"])
    loaded = load_tinygpt(tmp_path / "run")[0]
    np.testing.assert_array_equal(loaded.lm_head.weight.data, second.lm_head.weight.data)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# ---- generation ---------------------------------------------------------------------

def test_encode_prompt_gives_one_row_of_ids():
    tokenizer = CharTokenizer().train("abc")
    np.testing.assert_array_equal(encode_prompt(tokenizer, "cab"), [[6, 4, 5]])


@pytest.mark.shape
def test_generated_text_is_the_prompt_and_one_character_per_token(trained):
    text = generate_text(trained["model"], trained["tokenizer"], "The ", 30, seed=0)
    assert text.startswith("The ") and len(text) == 4 + 30


def test_seeded_generation_repeats_and_greedy_needs_no_seed(trained):
    model, tokenizer = trained["model"], trained["tokenizer"]

    def sample(seed):
        return generate_text(model, tokenizer, "def ", 40, top_k=10, seed=seed)
    assert sample(0) == sample(0) != sample(1)
    assert generate_text(model, tokenizer, "def ", 40, greedy=True) == \
        generate_text(model, tokenizer, "def ", 40, greedy=True, seed=5)


# ---- memory: nothing is recorded when nothing will be differentiated -----------------

@pytest.mark.memory_performance
def test_generation_and_evaluation_record_no_graph(trained, corpus):
    """Every LM-head output during generation (cached and not) and evaluation is a plain
    Tensor with no parents: no graph, so no activations are kept alive."""
    model = trained["model"]
    model.zero_grad()
    seen, head = [], model.lm_head
    original = type(head).forward

    def spy(x):
        out = original(head, x)
        seen.append((out.requires_grad, len(out._parents)))
        return out

    head.forward = spy
    try:
        generate_text(model, corpus["tokenizer"], "The ", 5, use_cache=True, seed=0)
        generate_text(model, corpus["tokenizer"], "The ", 5, use_cache=False, seed=0)
        evaluate_loss(model, corpus["val"][:200])
    finally:
        del head.forward
    assert len(seen) == 5 + 5 + 1 and set(seen) == {(False, 0)}
    assert all(p.grad is None for p in model.parameters())


# ---- export and API -------------------------------------------------------------------

API = ["TinyGPTError", "load_corpus", "build_tokenizer", "split_ids", "windows", "get_batch",
       "unigram_loss", "evaluation_starts", "evaluate_loss", "TrainConfig", "train_step",
       "progress_bar", "train", "save_tinygpt", "load_tinygpt", "encode_prompt",
       "generate_text", "quantize_gpt", "linear_bytes", "calibration_windows", "build_parser",
       "run_train", "run_generate", "main"]


@pytest.mark.export_import
def test_the_export_provides_the_whole_api(export_api):
    found = export_api("tinytorch.applications.tinygpt", API)
    assert issubclass(found["TinyGPTError"], Exception)
    assert all(callable(obj) for obj in found.values())


@pytest.mark.api_consistency
def test_generation_options_are_named_as_in_modules_13_and_17():
    import inspect

    from tinytorch.memoization import generate_cached
    from tinytorch.models.transformer import GPT

    def names(f):
        return list(inspect.signature(f).parameters)
    options = ["temperature", "top_k", "greedy", "seed"]
    assert names(generate_text)[4:8] == options
    assert names(GPT.generate)[3:] == names(generate_cached)[3:] == options
    for name in options:        # same defaults everywhere
        assert inspect.signature(generate_text).parameters[name].default == \
            inspect.signature(GPT.generate).parameters[name].default


@pytest.mark.api_consistency
def test_the_command_line_defaults_are_the_train_config_defaults():
    from tinytorch.applications.tinygpt import build_parser
    args = build_parser().parse_args(["train", "--out", "x"])
    config = TrainConfig()
    for name in ("steps", "batch_size", "lr", "min_lr", "weight_decay", "grad_clip",
                 "eval_every", "eval_windows", "seed"):
        assert getattr(args, name) == getattr(config, name), name
    assert build_parser().parse_args(["train"]).out == "runs/tinygpt"   # `train` alone works
    generate = build_parser().parse_args(["generate", "--model", "m"])
    assert (generate.temperature, generate.top_k, generate.greedy, generate.seed) == \
        (1.0, None, False, None)
