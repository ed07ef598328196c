"""Integration: TinyGPT's pieces from different modules working together: the training
loop is exactly 06's AdamW + 07's clipping and cosine schedule; generation with 17's KV
cache gives the same text as 13's GPT.generate; 15's int8 layers replace every Linear;
10's tokenizers and 07's checkpoints are the files of a saved model."""
import numpy as np
import pytest

from tinytorch.applications.tinygpt import (
    TrainConfig,
    build_tokenizer,
    calibration_windows,
    evaluate_loss,
    generate_text,
    get_batch,
    linear_bytes,
    load_tinygpt,
    quantize_gpt,
    save_tinygpt,
    split_ids,
    train,
)
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear
from tinytorch.core.optimizers import AdamW
from tinytorch.core.training import CosineAnnealingLR, clip_grad_norm, load_checkpoint
from tinytorch.memoization import KVCache
from tinytorch.models.transformer import GPT, GPTConfig
from tinytorch.quantization import QuantizedLinear, model_bytes
from tinytorch.text.tokenization import BPETokenizer, CharTokenizer


def test_train_is_adamw_with_clipping_and_a_cosine_schedule(make_gpt, corpus):
    config = TrainConfig(steps=5, batch_size=3, lr=5e-3, min_lr=5e-4, weight_decay=0.1,
                         grad_clip=0.5, eval_every=5, eval_windows=2, seed=7)
    ours = make_gpt()
    train(ours, corpus["train"], corpus["val"], config)

    model = make_gpt()
    optimizer = AdamW(model.parameters(), lr=5e-3, weight_decay=0.1)
    schedule = CosineAnnealingLR(optimizer, T_max=5, eta_min=5e-4)
    rng = np.random.default_rng(7)
    for _ in range(5):
        x, y = get_batch(corpus["train"], 3, 16, rng)
        optimizer.zero_grad()
        model(x, y)[1].backward()
        clip_grad_norm(model.parameters(), 0.5)
        optimizer.step()
        schedule.step()
    for a, b in zip(ours.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("options", [dict(greedy=True), dict(seed=3),
                                     dict(temperature=0.7, top_k=5, seed=11)])
def test_kv_cached_generation_equals_uncached(trained, options):
    model, tokenizer = trained["model"], trained["tokenizer"]
    cached = generate_text(model, tokenizer, "The ", 40, use_cache=True, **options)
    uncached = generate_text(model, tokenizer, "The ", 40, use_cache=False, **options)
    assert cached == uncached and len(cached) == 44       # 44 > block_size 16: crops too


def test_kv_cache_equals_uncached_on_spread_weights(make_gpt, corpus, spread):
    model = spread(make_gpt(n_layer=2, block_size=24)).eval()
    for options in (dict(greedy=True), dict(temperature=1.3, seed=0)):
        texts = {generate_text(model, corpus["tokenizer"], "for x in", 30, use_cache=cache,
                               **options) for cache in (True, False)}
        assert len(texts) == 1


def test_int8_replaces_every_linear_and_keeps_the_float_model(trained, corpus):
    model = trained["model"]
    windows = calibration_windows(corpus["tokenizer"], corpus["text"][:2000], 16)
    quantized = quantize_gpt(model, windows)
    layers = [quantized.lm_head] + [layer for block in quantized.blocks for layer in (
        block.attn.query, block.attn.key, block.attn.value, block.attn.out, block.mlp.fc,
        block.mlp.proj)]
    assert all(isinstance(layer, QuantizedLinear) for layer in layers) and len(layers) == 7
    assert isinstance(model.lm_head, Linear) and isinstance(model.blocks[0].mlp.fc, Linear)
    np.testing.assert_array_equal(quantized.lm_head.weight_q.data.astype(np.float32) *
                                  quantized.lm_head.weight_scale.data,
                                  quantized.lm_head.dequantized_weight())


def test_int8_model_predicts_almost_as_well(trained, corpus):
    model = trained["model"]
    windows = calibration_windows(corpus["tokenizer"], corpus["text"][:4000], 16)
    quantized = quantize_gpt(model, windows)
    val = corpus["val"][:16 * 200 + 1]
    float_loss, int8_loss = evaluate_loss(model, val), evaluate_loss(quantized, val)
    # measured: 2.6414 float, 2.6417 int8 (the first 200 windows of validation text)
    assert abs(int8_loss - float_loss) < 0.02
    x, _ = get_batch(val, 8, 16, np.random.default_rng(0))
    with no_grad():
        agree = (model(x)[0].data.argmax(-1) == quantized(x)[0].data.argmax(-1)).mean()
    assert agree > 0.9                                     # measured: 0.984


@pytest.mark.memory_performance
def test_int8_linear_weights_take_a_quarter_of_the_bytes(corpus, make_gpt):
    model = make_gpt(block_size=64, n_layer=2, n_head=4, n_embd=64)      # the CLI's default
    windows = calibration_windows(corpus["tokenizer"], corpus["text"][:640], 64)
    quantized = quantize_gpt(model, windows)
    for float_layer, int8_layer in ((model.lm_head, quantized.lm_head),
                                    (model.blocks[1].mlp.fc, quantized.blocks[1].mlp.fc)):
        assert int8_layer.weight_q.data.nbytes * 4 == float_layer.weight.data.nbytes
    # Linear bytes: 4 per weight and bias -> 1 per weight, 4 per bias, scale, zero point
    weights = 2 * (4 * 64 * 64 + 2 * 64 * 256) + 64 * 107
    biases = 2 * (4 * 64 + 256 + 64)
    assert linear_bytes(model) == 4 * (weights + biases) == 425_216
    scales = 2 * (4 * 64 + 256 + 64) + 107
    assert linear_bytes(quantized) == weights + 4 * (biases + scales) + 8 * 13 == 114_900
    assert 3.6 < linear_bytes(model) / linear_bytes(quantized) < 4       # measured: 3.70
    embeddings_and_norms = model_bytes(model) - linear_bytes(model)
    assert model_bytes(quantized) == linear_bytes(quantized) + embeddings_and_norms


def test_int8_generation_runs_with_and_without_cache(trained, corpus):
    windows = calibration_windows(corpus["tokenizer"], corpus["text"][:2000], 16)
    quantized = quantize_gpt(trained["model"], windows)
    texts = [generate_text(quantized, corpus["tokenizer"], "The ", 30, seed=0, use_cache=c)
             for c in (True, False)]
    assert texts[0] == texts[1] and texts[0].startswith("The ") and len(texts[0]) == 34


def test_saved_files_are_module_10_and_module_07_formats(trained, tmp_path):
    model, tokenizer = trained["model"], trained["tokenizer"]
    save_tinygpt(tmp_path / "run", model, tokenizer)
    assert CharTokenizer.load(tmp_path / "run" / "tokenizer.json").chars == tokenizer.chars
    fresh = GPT(GPTConfig(**{**vars(model.config), "seed": 99}))
    load_checkpoint(tmp_path / "run" / "model.npz", fresh)
    for a, b in zip(fresh.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_a_loaded_model_generates_the_same_text(trained, tmp_path):
    save_tinygpt(tmp_path / "run", trained["model"], trained["tokenizer"])
    loaded, tokenizer, _ = load_tinygpt(tmp_path / "run")
    options = dict(temperature=0.9, top_k=20, seed=4)
    assert generate_text(loaded, tokenizer, "class ", 50, **options) == \
        generate_text(trained["model"], trained["tokenizer"], "class ", 50, **options)


def test_a_bpe_tokenizer_trains_saves_and_generates(corpus, tmp_path):
    text = corpus["text"][:30_000]
    tokenizer = build_tokenizer(text, "bpe", vocab_size=300)
    assert isinstance(tokenizer, BPETokenizer) and tokenizer.vocab_size == 300
    train_ids, val_ids = split_ids(tokenizer.encode(text))
    assert len(train_ids) + len(val_ids) < 0.8 * len(text)         # merges shorten the text
    model = GPT(GPTConfig(vocab_size=300, block_size=16, n_layer=1, n_head=2, n_embd=16, seed=0))
    history = train(model, train_ids, val_ids, TrainConfig(steps=20, eval_every=20,
                                                           eval_windows=16))
    assert history["val_loss"][-1] < np.log(300)
    save_tinygpt(tmp_path / "bpe", model, tokenizer)
    loaded, loaded_tokenizer, config = load_tinygpt(tmp_path / "bpe")
    assert config["tokenizer"] == "BPETokenizer" and loaded_tokenizer.merges == tokenizer.merges
    a = generate_text(model, tokenizer, "The é", 10, seed=0)       # BPE encodes any text
    assert a == generate_text(loaded, loaded_tokenizer, "The é", 10, seed=0)
    assert a.startswith("The é")


@pytest.mark.memory_performance
def test_kv_cache_memory_for_the_default_model(corpus):
    """The cache generate_text allocates for the CLI's default model: keys and values of
    2 layers x 64 positions x 64 channels in float32, 2 * 2 * 64 * 64 * 4 bytes."""
    model = GPT(GPTConfig(vocab_size=corpus["tokenizer"].vocab_size, block_size=64, n_layer=2,
                          n_head=4, n_embd=64, seed=0))
    assert KVCache.for_model(model, batch_size=1).memory_bytes() == 2 * 2 * 64 * 64 * 4 == 65_536
