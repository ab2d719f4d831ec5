"""Tests of coldstart.models.encoders: model name resolution (never the network) and, marked slow, the
real all-MiniLM-L6-v2 from the shared models folder."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import models_folder

from coldstart.config import DEFAULT_MODEL
from coldstart.models import encoders
from coldstart.models.encoders import ModelUnavailable, length_batches, resolve_model

MINILM = models_folder() / "all-MiniLM-L6-v2"
needs_minilm = pytest.mark.skipif(
    not (MINILM / "config.json").is_file(),
    reason=f"all-MiniLM-L6-v2 is not at {MINILM} (set COLDSTART_MODELS_DIR to a folder holding it)",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("COLDSTART_MODEL", "COLDSTART_MODELS_DIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "COLDSTART_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def offline_nothing_local(monkeypatch, tmp_path):
    """Offline, with empty local model and Hugging Face cache folders."""
    models, hf_home = tmp_path / "models", tmp_path / "hf"
    models.mkdir()
    hf_home.mkdir()
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(models))
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads its cache location when first imported: point it at the empty folder too
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    return models


def test_existing_folder_is_returned(tmp_path):
    folder = tmp_path / "my model"
    folder.mkdir()
    assert resolve_model(str(folder)) == str(folder)


@pytest.mark.parametrize("name", ["./no/such/model", "/no/such/model", "~/no-such-model-folder-xyz", "a/b/c"])
def test_missing_folder_is_reported(name):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model(name)


@needs_minilm
def test_hub_id_resolves_to_local_copy(monkeypatch):
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(MINILM.parent))
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(MINILM)
    assert resolve_model() == str(MINILM)  # the default model
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local copy needs no network
    assert resolve_model(DEFAULT_MODEL) == str(MINILM)


def test_hub_id_resolves_to_double_dash_copy(monkeypatch, tmp_path):
    copy = tmp_path / "org--some-model"
    copy.mkdir()
    (copy / "config.json").write_text("{}")
    (tmp_path / "other-model").mkdir()  # a folder without config.json is no model copy
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(tmp_path))
    assert resolve_model("org/some-model") == str(copy)
    assert resolve_model("org/other-model") == "org/other-model"  # online: left to transformers


def test_coldstart_model_env(monkeypatch, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    monkeypatch.setenv("COLDSTART_MODEL", str(folder))
    assert resolve_model() == str(folder)


def test_models_dir_default(monkeypatch, tmp_path):
    monkeypatch.setenv("COLDSTART_HOME", str(tmp_path))
    assert encoders.models_dir() == tmp_path.resolve() / "models"
    monkeypatch.setenv("COLDSTART_MODELS_DIR", str(tmp_path / "x"))
    assert encoders.models_dir() == tmp_path / "x"


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "coldstart-tests/not-a-real-model"])
def test_offline_without_local_copy(offline_nothing_local, name):
    with pytest.raises(ModelUnavailable) as info:
        resolve_model(name)
    text = str(info.value)
    assert "offline" in text and "make fetch" in text
    assert str(offline_nothing_local) in text  # says where to put the copy
    assert "\n" not in text


def test_transformers_offline_also_counts(offline_nothing_local, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="offline"):
        resolve_model(DEFAULT_MODEL)


def test_length_batches():
    batches = length_batches([3, 1, 5, 2, 5], batch_size=2)
    assert [b.tolist() for b in batches] == [[2, 4], [0, 3], [1]]
    assert length_batches([], 4) == []


# ------------------------------------------------------------------------------------------------
# The real model (slow: TensorFlow and the weights load in several seconds)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    if not (MINILM / "config.json").is_file():
        pytest.skip(f"all-MiniLM-L6-v2 is not at {MINILM}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # must never download
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        tokenizer, model = encoders.load_encoder(str(MINILM))
    return tokenizer, model


TEXTS = [
    "red retrospot cake stand",
    "red retrospot tea set",
    "zinc metal heart decoration",
    "",
    "set of 3 cake tins pantry design with a much longer description than the others in this list",
    "red retrospot cake stand",
    "jumbo bag",
]


@pytest.mark.slow
def test_minilm_encode(minilm):
    tok, model = minilm
    vecs = encoders.encode(TEXTS, tok, model, batch_size=2, progress=False)
    assert vecs.shape == (len(TEXTS), 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vecs).all()
    # identical texts, identical vectors (up to float noise: they may sit in batches padded differently)
    np.testing.assert_allclose(vecs[0], vecs[5], atol=1e-6)
    np.testing.assert_array_equal(encoders.encode(TEXTS, tok, model, batch_size=2, progress=False), vecs)
    # batching and length-sorting do not change the results
    big = encoders.encode(TEXTS, tok, model, batch_size=64, progress=False)
    np.testing.assert_allclose(vecs, big, atol=1e-5)
    # a text alone gives the same as in a padded batch
    np.testing.assert_allclose(encoders.encode([TEXTS[1]], tok, model, progress=False)[0], vecs[1], atol=1e-5)
    # meaning: the two red retrospot items are closer than the cake stand and the zinc heart
    cake, tea, zinc = vecs[0], vecs[1], vecs[2]
    assert cake @ tea > cake @ zinc
    assert encoders.encode([], tok, model).shape == (0, 384)
    # batches of many shapes above, one traced graph (a second costs seconds per model)
    assert encoders.compiled_forward(model).experimental_get_tracing_count() == 1


@pytest.mark.slow
def test_minilm_unnormalised_and_truncation(minilm):
    tok, model = minilm
    raw = encoders.encode(TEXTS[:3], tok, model, normalize=False, progress=False)
    unit = encoders.encode(TEXTS[:3], tok, model, progress=False)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    # texts beyond max_len tokens are truncated: a long text and its max_len-token prefix agree
    long = "red retrospot cake stand " * 20
    a = encoders.encode([long], tok, model, max_len=8, progress=False)
    b = encoders.encode([long + " zinc metal heart decoration"], tok, model, max_len=8, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_mean_pool_ignores_padding():
    import tensorflow as tf

    hidden = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = tf.constant([[1, 1, 0]])
    np.testing.assert_allclose(encoders.mean_pool(hidden, mask).numpy(), [[2.0, 3.0]])


@pytest.mark.slow
def test_compiled_forward_is_traced_again_when_layers_are_inserted():
    # a model that encoded before adapters were added must not keep using the graph without them
    import tensorflow as tf
    from transformers import BertConfig, TFBertModel

    from coldstart.models import peft
    from coldstart.models.encoders import compiled_forward

    tf.keras.utils.set_random_seed(0)
    model = TFBertModel(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=16, max_position_embeddings=16))
    ids = tf.constant([[2, 5, 6, 3], [2, 7, 3, 0]])
    mask = tf.cast(ids != 0, tf.int32)
    before = compiled_forward(model)(ids, mask).numpy()
    fn = compiled_forward(model)
    assert compiled_forward(model) is fn  # nothing changed: the traced pass is reused
    model.layers[0].trainable = False     # training flags and weights are not structure
    assert compiled_forward(model) is fn
    peft.add_adapters(model, size=4)
    rng = np.random.default_rng(0)
    for layer in peft.peft_layers(model).values():  # adapters that change the output (a constant
        # shift would not: the LayerNorm after each adapter removes it)
        layer.up.kernel.assign(rng.normal(size=layer.up.kernel.shape).astype(np.float32))
    after = compiled_forward(model)
    assert after is not fn
    np.testing.assert_allclose(after(ids, mask).numpy(), _mean(model, ids, mask), rtol=1e-5, atol=1e-6)
    assert not np.allclose(after(ids, mask).numpy(), before)
    peft.add_lora(model, rank=2)  # LoRA replaces the query and value projections: traced again too
    assert compiled_forward(model) is not after


def _mean(model, ids, mask):
    from coldstart.models.encoders import mean_pool

    return mean_pool(model(input_ids=ids, attention_mask=mask, training=False).last_hidden_state, mask).numpy()


@needs_minilm
def test_load_encoder_config_overrides_reach_the_dropout_layers():
    _, model = encoders.load_encoder(str(MINILM), hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.2)
    assert model.config.hidden_dropout_prob == 0.3 and model.config.attention_probs_dropout_prob == 0.2
    layer = model.bert.encoder.layer[0]
    assert layer.attention.dense_output.dropout.rate == 0.3
    assert layer.attention.self_attention.dropout.rate == 0.2
