"""Edge cases: what a user can get wrong gives one clear line and a non-zero exit code
from the command line (never a traceback), and a clear exception from the library;
nothing a failed command touches is damaged."""
import json

import numpy as np
import pytest

from tinytorch.applications.tinygpt import (
    TinyGPTError,
    TrainConfig,
    encode_prompt,
    generate_text,
    get_batch,
    load_corpus,
    load_tinygpt,
    save_tinygpt,
    train,
)

TINY_ARGS = ["--block-size", 8, "--n-layer", 1, "--n-head", 2, "--n-embd", 8, "--eval-windows", 8]


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    directory = tmp_path_factory.mktemp("saved") / "model"
    save_tinygpt(directory, trained["model"], trained["tokenizer"])
    return directory


# ---- the command line: usage errors (exit 2) ----------------------------------------

@pytest.mark.parametrize("args, says", [
    ([], "the following arguments are required: {train,generate}"),
    (["fly"], "invalid choice: 'fly'"),
    (["train", "--steps", "-5", "--out", "x"], "--steps: expected a positive integer, got '-5'"),
    (["train", "--steps", "0", "--out", "x"], "expected a positive integer, got '0'"),
    (["train", "--steps", "ten", "--out", "x"], "expected a positive integer, got 'ten'"),
    (["train", "--out", "x", "--lr", "nan"], "--lr: expected a positive number, got 'nan'"),
    (["train", "--out", "x", "--val-fraction", "1.5"], "expected a number between 0 and 1"),
    (["train", "--out", "x", "--tokenizer", "words"], "invalid choice: 'words'"),
    (["generate", "--model", "m", "--bogus"], "unrecognized arguments: --bogus"),
    (["generate", "--model", "m", "--tokens", "-1"], "expected an integer >= 0, got '-1'"),
    (["generate", "--model", "m", "--temperature", "0"], "expected a positive number, got '0'"),
    (["generate", "--prompt", "hi"], "the following arguments are required: --model"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(run_cli, error_line, args, says):
    result = run_cli(*args)
    line = error_line(result)
    assert result.returncode == 2 and line.startswith("tinygpt") and says in line


# ---- the command line: errors while running (exit 1) --------------------------------

def test_a_missing_model_directory(run_cli, error_line, tmp_path):
    result = run_cli("generate", "--model", tmp_path / "nowhere", "--prompt", "x")
    assert result.returncode == 1
    assert error_line(result) == (f"tinygpt generate: error: no model directory at "
                                  f"{tmp_path / 'nowhere'} (train one with `train --out "
                                  f"{tmp_path / 'nowhere'}`)")


@pytest.mark.parametrize("prompt, says", [
    ("naïve ∑",
     "the prompt has characters the model never saw: 'ï∑' (it knows 103 characters)"),
    ("", "the prompt is empty: give at least one character to continue from"),
])
def test_prompts_the_model_cannot_read(run_cli, error_line, saved, prompt, says):
    result = run_cli("generate", "--model", saved, "--prompt", prompt, "--tokens", 5)
    assert result.returncode == 1 and error_line(result).endswith(says)
    assert result.stdout == ""


def test_top_k_larger_than_the_vocabulary(run_cli, error_line, saved):
    result = run_cli("generate", "--model", saved, "--top-k", 500)
    assert result.returncode == 1
    assert "--top-k 500 is larger than the vocabulary (107 tokens)" in error_line(result)


def test_a_directory_that_is_not_a_model(run_cli, error_line, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    result = run_cli("generate", "--model", tmp_path)
    assert result.returncode == 1
    assert "is not a TinyGPT model: tokenizer.json, model.npz missing" in error_line(result)


def test_train_refuses_to_overwrite_a_directory_of_other_files(run_cli, error_line, tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    result = run_cli("train", "--steps", 1, "--out", tmp_path, *TINY_ARGS)
    assert result.returncode == 1 and "holds other files (notes.txt)" in error_line(result)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "precious"


@pytest.mark.parametrize("text, args, says", [
    ("", [], "is empty"),
    ("abcdefghij" * 3, ["--block-size", 8], "the validation split holds 3 tokens, too few "
                                            "for --block-size 8"),
    ("abc" * 100, ["--dropout", 1.5], "dropout must be in [0, 1)"),
    ("abc" * 100, ["--n-embd", 10, "--n-head", 4], "n_embd 10 is not divisible by n_head 4"),
    ("abc" * 100, ["--tokenizer", "bpe", "--vocab-size", 100], "vocab_size must be at least 259"),
])
def test_training_inputs_that_cannot_work(run_cli, error_line, tmp_path, text, args, says):
    (tmp_path / "data.txt").write_text(text)
    result = run_cli("train", "--steps", 1, "--out", tmp_path / "out", "--data",
                     tmp_path / "data.txt", "--n-layer", 1, *args)
    assert result.returncode == 1
    line = error_line(result)
    assert line.startswith("tinygpt train: error: ") and says in line
    assert not (tmp_path / "out").exists()


def test_training_on_a_missing_file(run_cli, error_line, tmp_path):
    result = run_cli("train", "--out", tmp_path / "out", "--data", tmp_path / "nothing.txt")
    assert result.returncode == 1
    assert error_line(result) == (f"tinygpt train: error: no corpus at {tmp_path / 'nothing.txt'}"
                                  f" (pass --data PATH to a UTF-8 text file)")


# ---- the library --------------------------------------------------------------------

def test_load_names_what_is_broken(saved, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_bytes((saved / name).read_bytes())
    (broken / "model.npz").write_bytes((saved / "model.npz").read_bytes()[:500])  # truncated
    with pytest.raises(TinyGPTError, match="not a readable checkpoint"):
        load_tinygpt(broken)
    config = json.loads((saved / "config.json").read_text())
    config["model"]["vocab_size"] = 50
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(TinyGPTError, match="the tokenizer has 107 tokens, the model 50"):
        load_tinygpt(broken)
    (broken / "config.json").write_text(json.dumps({**config, "format": "other"}))
    with pytest.raises(TinyGPTError, match="unknown format 'other'"):
        load_tinygpt(broken)


def test_saving_over_a_file_is_refused(trained, tmp_path):
    target = tmp_path / "model"
    target.write_text("not a directory")
    with pytest.raises(TinyGPTError, match="exists and is not a directory"):
        save_tinygpt(target, trained["model"], trained["tokenizer"])
    assert target.read_text() == "not a directory"


def test_zero_new_tokens_return_the_prompt(trained):
    for cache in (True, False):
        assert generate_text(trained["model"], trained["tokenizer"], "lambda", 0,
                             use_cache=cache) == "lambda"


def test_a_prompt_longer_than_the_context_is_cropped_alike_with_and_without_cache(trained):
    prompt = "The import statement is executed in two steps: find a module"   # 61 > 16
    texts = {generate_text(trained["model"], trained["tokenizer"], prompt, 12, greedy=True,
                           use_cache=cache) for cache in (True, False)}
    assert len(texts) == 1 and texts.pop().startswith(prompt)


def test_special_token_text_in_a_prompt_is_one_token(trained):
    ids = encode_prompt(trained["tokenizer"], "<bos>x")
    np.testing.assert_array_equal(ids, [[1, trained["tokenizer"].encode("x")[0]]])


def test_too_little_data_for_a_batch():
    with pytest.raises(TinyGPTError, match="5 tokens are too few for windows of block_size 5"):
        get_batch(np.arange(5), 2, 5, np.random.default_rng(0))


@pytest.mark.parametrize("changes, says", [
    (dict(steps=0), "steps must be a positive integer"),
    (dict(batch_size=2.5), "batch_size must be a positive integer"),
    (dict(lr=1e-3, min_lr=1e-2), "need 0 <= min_lr <= lr"),
    (dict(grad_clip=0), "grad_clip must be positive or None"),
])
def test_train_config_rejects_bad_values(changes, says):
    with pytest.raises(ValueError, match=says):
        TrainConfig(**changes)


def test_a_nan_weight_stops_training_at_its_step(make_gpt, corpus):
    model = make_gpt()
    model.lm_head.weight.data[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"^step 1: the loss is nan: training diverged"):
        train(model, corpus["train"], corpus["val"], TrainConfig(steps=2))


def test_a_missing_corpus_file(tmp_path):
    with pytest.raises(TinyGPTError, match="no corpus at .*nothing.txt"):
        load_corpus(tmp_path / "nothing.txt")
