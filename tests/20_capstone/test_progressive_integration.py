"""Progressive integration: the capstone loads exactly the modules of its closure that
it uses (not 08's DataLoader, not 16/18), and is built from their pieces: 10's tokenizer,
13's GPT, 06's AdamW, 07's clipping/schedule/checkpoints, 15's QuantizedLinear and
17's generate_cached."""

import numpy as np

import tinytorch.applications.tinygpt as tinygpt
from tinytorch.applications.tinygpt import (
    TrainConfig,
    build_tokenizer,
    calibration_windows,
    generate_text,
    quantize_gpt,
    train,
)
from tinytorch.core.training import CosineAnnealingLR
from tinytorch.models.transformer import GPT
from tinytorch.quantization import QuantizedLinear
from tinytorch.text.tokenization import CharTokenizer

EXPECTED = {"tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
            "tinytorch.core.losses", "tinytorch.core.autograd", "tinytorch.core.optimizers",
            "tinytorch.core.training", "tinytorch.core.spatial", "tinytorch.text.tokenization",
            "tinytorch.text.embeddings", "tinytorch.models.attention",
            "tinytorch.models.transformer", "tinytorch.applications.tinygpt"}
TOP_LEVEL = {"tinytorch.profiling", "tinytorch.quantization", "tinytorch.memoization"}


def test_importing_the_capstone_loads_exactly_its_closure(loaded_modules):
    assert loaded_modules("tinytorch.applications.tinygpt") == EXPECTED | TOP_LEVEL


def test_the_pipeline_is_made_of_earlier_modules(trained, corpus):
    assert isinstance(trained["model"], GPT) and isinstance(corpus["tokenizer"], CharTokenizer)
    assert corpus["tokenizer"].chars == sorted(set(corpus["text"]))
    assert corpus["tokenizer"].vocab_size == 4 + 103        # specials + <unk> + 103 characters
    windows = calibration_windows(corpus["tokenizer"], corpus["text"][:500], 16)
    assert isinstance(quantize_gpt(trained["model"], windows).blocks[0].mlp.fc, QuantizedLinear)


def test_generation_uses_module_17s_kv_cache(trained, monkeypatch):
    calls = []
    original = tinygpt.generate_cached

    def spy(model, idx, max_new_tokens, **options):
        calls.append((idx.shape, max_new_tokens, options))
        return original(model, idx, max_new_tokens, **options)

    monkeypatch.setattr(tinygpt, "generate_cached", spy)
    generate_text(trained["model"], trained["tokenizer"], "abc", 5, greedy=True)
    assert calls == [((1, 3), 5, dict(temperature=1.0, top_k=None, greedy=True, seed=None))]
    generate_text(trained["model"], trained["tokenizer"], "abc", 5, use_cache=False)
    assert len(calls) == 1                        # use_cache=False is GPT.generate (13)


def test_training_steps_module_07s_cosine_schedule_once_per_step(make_gpt, corpus, monkeypatch):
    steps = []
    original = CosineAnnealingLR.step
    monkeypatch.setattr(CosineAnnealingLR, "step", lambda self: (steps.append(self.last_epoch),
                                                                 original(self)))
    train(make_gpt(), corpus["train"], corpus["val"], TrainConfig(steps=3, eval_windows=2))
    assert steps == [0, 1, 2]


def test_a_char_tokenizer_limited_by_vocab_size_maps_rare_characters_to_unk(corpus):
    tokenizer = build_tokenizer(corpus["text"], "char", vocab_size=40)
    ids = np.array(tokenizer.encode(corpus["text"][:5000]))
    assert tokenizer.vocab_size == 40 and (ids == tokenizer.unk_id).any()
    assert ids.max() < 40
