"""Tests of coldstart.models.keras3, the Keras 3 / KerasHub path of notebook 11: the same token ids and
embeddings as the transformers path, the same loss as notebook 03's TwoTower on the same batch, a loss
that training lowers, and what ``enable_lora`` trains. Offline, on the shared all-MiniLM-L6-v2; the
tests that need keras-hub are skipped, with the reason, where it is not installed (it is an extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import models_folder

from coldstart import training
from coldstart._internal.versions import KERAS3_LIBRARIES, PIN_KERAS_HUB, keras3_problems
from coldstart.models import keras3 as K3
from coldstart.models.encoders import ModelUnavailable
from coldstart.training import pairs, pipeline

REPO = Path(__file__).resolve().parents[1]
MINILM = models_folder() / "all-MiniLM-L6-v2"
hub_installed = pytest.mark.skipif(
    importlib.util.find_spec("keras_hub") is None,
    reason="keras-hub is not installed: it is the Keras 3 chapter's extra (pip install -e '.[keras3]')")


def needs_hub(test):
    """The real model through KerasHub: skipped without keras-hub, and slow (loading, training)."""
    return pytest.mark.slow(hub_installed(test))

TEXTS = ["red retrospot cake stand", "WHITE HANGING HEART T-LIGHT HOLDER", "", "set of 3 café cake tins",
         "jumbo bag pink polkadot " * 12, "zinc metal heart decoration"]
LEARNING_RATE = 1e-4
GOOD = {"tensorflow": "2.21.0", "keras": "3.15.1", "keras-hub": "0.32.0", "tensorflow-text": "2.21.1"}


# --- the version guard: no keras-hub needed ------------------------------------------------------------
def test_keras3_problems_name_the_fix():
    assert keras3_problems(GOOD) == []
    missing = keras3_problems({**GOOD, "keras-hub": None})
    assert len(missing) == 1 and 'pip install "keras-hub>=0.32,<0.33" "tensorflow-text==2.21.*"' in missing[0]
    wrong_text = keras3_problems({**GOOD, "tensorflow-text": "2.20.0"})
    assert len(wrong_text) == 1 and "does not match TensorFlow 2.21.0" in wrong_text[0]
    assert "tensorflow-text is missing" in keras3_problems({**GOOD, "tensorflow-text": None})[0]
    assert "keras 3.10.0 is too old" in keras3_problems({**GOOD, "keras": "3.10.0"})[0]
    assert "0.31.0 is not the version" in keras3_problems({**GOOD, "keras-hub": "0.31.0"})[0]


def test_keras3_pins_agree_across_extra_lock_and_guard():
    """The extra's range is the guard's, and the lock's exact versions pass the guard."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert PIN_KERAS_HUB in extras["keras3"]
    assert not any("keras-hub" in dep for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "dependencies"])                                                  # the main course does not need it
    lock = dict(line.split("==", 1) for line in (REPO / "requirements-lock.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    lock = {name.lower().replace("_", "-"): version for name, version in lock.items()}
    assert keras3_problems({name: lock.get(name) for name in KERAS3_LIBRARIES}) == []


def test_without_keras_hub_the_loader_says_how_to_install_it(monkeypatch):
    monkeypatch.delenv("COLDSTART_SKIP_VERSION_CHECK", raising=False)
    monkeypatch.setattr(K3, "installed_versions", lambda names: {**GOOD, "keras-hub": None})
    with pytest.raises(K3.KerasHubUnavailable, match=r"keras-hub is not installed.*pip install"):
        K3.import_keras_hub()


def test_a_missing_model_folder_is_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable):
        K3.load_backbone(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize("config, strips", [({"do_lower_case": True, "strip_accents": None}, True),
                                            ({"do_lower_case": True}, True),
                                            ({"do_lower_case": True, "strip_accents": False}, False),
                                            ({"do_lower_case": False}, False),
                                            ({"do_lower_case": False, "strip_accents": True}, True)])
def test_accents_are_stripped_as_the_checkpoints_tokenizer_says(tmp_path, config, strips):
    import json

    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    assert K3.strips_accents(str(tmp_path)) is strips


# --- the training helpers, for Keras 3's fit and optimizers ------------------------------------------------
def test_warmup_schedule_for_keras3_matches_the_tf_keras_one():
    import keras

    ours, theirs = training.warmup_schedule(2e-3, 4, keras=keras), training.warmup_schedule(2e-3, 4)
    assert isinstance(ours, keras.optimizers.schedules.LearningRateSchedule)
    values = [float(ours(step)) for step in range(6)]
    np.testing.assert_allclose(values, [float(theirs(step)) for step in range(6)], rtol=1e-6)
    np.testing.assert_allclose(values, [5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3, 2e-3], rtol=1e-6)
    adam = keras.optimizers.Adam(ours)                          # Keras 3 takes it
    assert float(adam.learning_rate) == pytest.approx(5e-4)


def test_ranking_callback_in_keras3_fit_keeps_the_best_weights():
    import keras

    scores = iter([0.10, 0.20, 0.15, 0.30])                    # before, epoch 1 (best), epoch 2 -> stop
    cb = training.make_ranking_callback(lambda: next(scores), patience=1, verbose=False, keras=keras)
    assert isinstance(cb, keras.callbacks.Callback)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    saved = []

    class Snap(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved.append([w.copy() for w in self.model.get_weights()])

    x, y = np.random.default_rng(0).normal(size=(32, 2)), np.ones((32, 1))
    hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[cb, Snap()])
    assert len(hist.history["loss"]) == 2 and hist.history["val_ndcg"] == [0.20, 0.15]
    assert cb.best_epoch == 0 and cb.best_index == 1
    assert all(np.allclose(a, b) for a, b in zip(model.get_weights(), saved[0]))
    assert not all(np.allclose(a, b) for a, b in zip(saved[0], saved[1]))   # epoch 2 did move the weights


def test_epoch_timer_in_keras3_fit():
    import keras

    timer = training.make_epoch_timer(keras=keras)
    assert isinstance(timer, keras.callbacks.Callback)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0, callbacks=[timer])
    assert len(timer.seconds) == 2 and all(s > 0 for s in timer.seconds)


# --- the real model ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def both():
    """``(KerasHub tokenizer, backbone, transformers tokenizer, TFBertModel)`` of the shared MiniLM, offline."""
    if importlib.util.find_spec("keras_hub") is None:
        pytest.skip("keras-hub is not installed (pip install -e '.[keras3]')")
    if not (MINILM / "config.json").is_file():
        pytest.skip(f"all-MiniLM-L6-v2 is not at {MINILM} (set COLDSTART_MODELS_DIR)")
    from coldstart.models import load_encoder

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        tokenizer, backbone = K3.load_backbone(str(MINILM))
        hf_tokenizer, tf_model = load_encoder(str(MINILM))
    return tokenizer, backbone, hf_tokenizer, tf_model


@needs_hub
def test_token_ids_are_the_transformers_tokenizers(both):
    tokenizer, _, hf_tokenizer, _ = both
    for max_len in (8, 32):
        ours = tokenizer(TEXTS, truncation=True, max_length=max_len)["input_ids"]
        assert ours == hf_tokenizer(TEXTS, truncation=True, max_length=max_len)["input_ids"]
    assert max(len(x) for x in ours) == 32 and ours[2] == [101, 102]
    # the accent is stripped as transformers strips it, not turned into [UNK]
    assert tokenizer(["café"])["input_ids"] == tokenizer(["cafe"])["input_ids"] != [[101, 100, 102]]


@needs_hub
def test_embeddings_equal_transformers_mean_pooling(both):
    from coldstart.models import encode

    tokenizer, backbone, hf_tokenizer, tf_model = both
    ours = K3.encode(TEXTS, tokenizer, backbone, max_len=32, batch_size=4)
    theirs = encode(TEXTS, hf_tokenizer, tf_model, max_len=32, batch_size=4, progress=False)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.abs(ours - theirs).max() < 1e-3
    assert np.abs(ours[0] - ours[1]).max() > 0.05     # different texts, different vectors: the check can fail


@needs_hub
def test_the_harness_scores_it_as_it_scores_the_transformers_model(both):
    from coldstart.data.protocol import Cases
    from coldstart.models import EncodedContextSimilarity, TextSimilarity, encode

    tokenizer, backbone, hf_tokenizer, tf_model = both
    catalog = [t for t in TEXTS if t]
    cases = Cases(context=[np.array([0, 1]), np.array([3]), np.array([], dtype=np.int64)],
                  country=np.array(["United Kingdom"] * 3, dtype=object),
                  date=np.array(["2011-09-02"] * 3, dtype="datetime64[ns]"))
    ours = K3.catalog_scorer(tokenizer, backbone, catalog, softness=0.1).score(cases)
    theirs = TextSimilarity(encode(catalog, hf_tokenizer, tf_model, progress=False), softness=0.1).score(cases)
    assert ours.shape == (3, len(catalog)) and np.isneginf(ours[2]).all() and np.isneginf(theirs[2]).all()
    assert np.abs(ours[:2] - theirs[:2]).max() < 2e-3
    ours = K3.KerasContextSimilarity.of_catalog(tokenizer, backbone, catalog, progress=False).score(cases)
    theirs = EncodedContextSimilarity.of_catalog(hf_tokenizer, tf_model, catalog, progress=False).score(cases)
    assert np.isneginf(ours[2]).all() and np.abs(ours[:2] - theirs[:2]).max() < 2e-3
    assert np.abs(ours[0] - ours[1]).max() > 0.05


def _item_pairs(tokenizer):
    """One batch of item-to-item pairs whose loss needs both masks: item 4 is the positive of two pairs,
    and pair 0's anchor (item 0) is pair 4's positive."""
    texts = np.array(["red retrospot cake stand", "white hanging heart t-light holder", "jumbo bag pink polkadot",
                      "lunch bag black skull", "regency cakestand 3 tier", "party bunting"], dtype=object)
    anchors, positives = np.array([0, 1, 2, 3, 5, 2]), np.array([4, 5, 3, 2, 0, 4])
    draw = pairs.tokenize_tower_pairs(list(texts[anchors]), positives, texts, tokenizer, context_len=16, item_len=16)
    draw["context_item"] = anchors.astype(np.int32)
    data = pipeline.bucketed_dataset(draw, np.zeros(len(anchors), np.int32), batch_size=len(anchors), shuffle=False)
    return next(iter(data))


@needs_hub
def test_the_loss_is_notebook_03s_on_the_same_batch(both):
    import keras

    from coldstart import import_tensorflow
    from coldstart.models.bert import TwoTower

    tf = import_tensorflow()
    tokenizer, backbone, hf_tokenizer, tf_model = both
    batch = _item_pairs(tokenizer)
    assert batch["context_ids"].numpy().tolist() == _item_pairs(hf_tokenizer)["context_ids"].numpy().tolist()
    tower = TwoTower(tf_model)
    tower.compile(optimizer=tf.keras.optimizers.SGD(0.0))       # one step that changes nothing: its loss
    dropouts = [m for m in tf_model.submodules if isinstance(m, tf.keras.layers.Dropout)]
    rates = [d.rate for d in dropouts]
    try:
        for d in dropouts:                                      # its step trains, so dropout is on: off here
            d.rate = 0.0
        theirs = float(tower.train_step(batch)["loss"])
    finally:
        for d, rate in zip(dropouts, rates):
            d.rate = rate
    model = K3.KerasTwoTower(backbone)
    ours = float(model.compute_loss(batch, y_pred=model(batch)))
    unmasked = float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        np.arange(6), model(batch), from_logits=True)))
    assert abs(ours - theirs) < 0.02 * theirs
    assert abs(unmasked - ours) > 0.1 * ours                    # the masks change this batch's loss


@needs_hub
def test_a_few_steps_lower_the_loss_with_frozen_embeddings(both):
    import keras

    tokenizer, _, _, tf_model = both
    _, backbone = K3.load_backbone(str(MINILM))                 # a fresh copy: this test trains it
    K3.freeze_embeddings(backbone)
    embeddings = [w for w in tf_model.trainable_weights if "/embeddings/" in w.name]
    frozen_there = sum(int(np.prod(w.shape)) for w in tf_model.trainable_weights) - sum(
        int(np.prod(w.shape)) for w in embeddings)
    assert K3.trainable_count(backbone) == frozen_there == 10_794_624  # the taught tower's trainable weights
    batch = _item_pairs(tokenizer)
    model = K3.KerasTwoTower(backbone)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), run_eagerly=True)  # eager: no trace in a unit test
    before = float(model.compute_loss(batch, y_pred=model(batch)))
    word_embeddings = backbone.get_layer("token_embedding").embeddings.numpy().copy()
    history = model.fit(_repeat(batch), steps_per_epoch=3, epochs=1, verbose=0)
    after = float(model.compute_loss(batch, y_pred=model(batch)))
    assert after < 0.5 * before and np.isfinite(history.history["loss"][0])
    np.testing.assert_array_equal(backbone.get_layer("token_embedding").embeddings.numpy(), word_embeddings)


def _repeat(batch):
    from coldstart import import_tensorflow

    return import_tensorflow().data.Dataset.from_tensors(dict(batch)).repeat()


@needs_hub
def test_enable_lora_trains_the_counted_weights():
    _, backbone = K3.load_backbone(str(MINILM))
    expected = K3.lora_weight_count(backbone, 8)
    # per layer and projection (query, value): A (384, 12 heads, 8) + B (8, 32) + the bias (12, 32)
    assert expected == 6 * 2 * (384 * 12 * 8 + 8 * 32 + 12 * 32) == 450_048
    backbone.enable_lora(8)
    assert K3.trainable_count(backbone) == expected
    names = {w.path.split("/")[-1] for w in backbone.trainable_weights}
    assert names == {"lora_kernel_a", "lora_kernel_b", "bias"}


def _tiny_backbone():
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    return keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
                                         intermediate_dim=16, max_sequence_length=16)


@hub_installed
def test_a_lora_file_brings_back_what_trained_only_with_the_biases_frozen(tmp_path):
    """KerasHub's enable_lora trains the projections' biases, its LoRA file does not hold them;
    K3.enable_lora freezes them, and the round trip is exact."""
    for ours, lost in ((False, True), (True, False)):
        trained, reloaded = _tiny_backbone(), _tiny_backbone()
        for model in (trained, reloaded):
            K3.enable_lora(model, 2) if ours else model.enable_lora(2)
        assert K3.trainable_count(trained) == K3.lora_weight_count(trained, 2, bias=not ours)
        for w in trained.trainable_weights:                     # what training does: every trainable weight moves
            w.assign(w.numpy() + 0.1)
        path = str(tmp_path / f"{ours}.lora.h5")
        trained.save_lora_weights(path)
        reloaded.load_lora_weights(path)
        differ = [a.path for a, b in zip(trained.weights, reloaded.weights) if not np.array_equal(a.numpy(), b.numpy())]
        assert bool(differ) == lost and all(p.endswith("/bias") for p in differ)


@hub_installed
def test_lora_on_every_projection_matches_the_course_targets_and_round_trips(tmp_path):
    """``targets`` takes the course's names (``peft.LORA_TARGETS``); the feed-forward projections are
    plain ``Dense`` layers, so their factors are ``A`` (d_in, r) and ``B`` (r, d_out) as in the course's layer."""
    from coldstart.models import peft

    assert set(K3.LORA_LAYER_NAMES) == set(peft.LORA_TARGETS)
    every = tuple(K3.LORA_LAYER_NAMES)
    trained, reloaded = _tiny_backbone(), _tiny_backbone()
    for model in (trained, reloaded):
        K3.enable_lora(model, 2, targets=every)
    # one layer, hidden 8 = 2 heads x 4, feed-forward 16: q, k, v (8, 2, 4) -> A 8*2*2 + B 2*4; attention
    # output (2, 4, 8) -> A 2*4*2 + B 2*8; intermediate (8, 16) -> 8*2 + 2*16; output (16, 8) -> 16*2 + 2*8
    expected = 3 * (32 + 8) + (16 + 16) + (16 + 32) + (32 + 16)
    assert K3.lora_weight_count(trained, 2, targets=every, bias=False) == expected == K3.trainable_count(trained)
    assert K3.lora_weight_count(trained, 2, bias=False) == 2 * (32 + 8)     # the default: query and value
    for w in trained.trainable_weights:
        w.assign(w.numpy() + 0.1)
    path = str(tmp_path / "every.lora.h5")
    trained.save_lora_weights(path)
    reloaded.load_lora_weights(path)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(trained.weights, reloaded.weights))
    with pytest.raises(ValueError, match="unknown LoRA targets"):
        K3.enable_lora(_tiny_backbone(), 2, targets=("ffn",))


@hub_installed
def test_load_lora_restores_the_saved_layers_and_refuses_a_backbone_enabled_on_others(tmp_path):
    """KerasHub's load_lora_weights loads only the layers enable_lora was called on, silently; K3.load_lora
    enables a bare backbone on the file's layers and refuses one enabled on fewer."""
    every = tuple(K3.LORA_LAYER_NAMES)
    trained = _tiny_backbone()
    K3.enable_lora(trained, 2, targets=every)
    for w in trained.trainable_weights:
        w.assign(w.numpy() + 0.1)
    path = tmp_path / "every.lora.h5"
    trained.save_lora_weights(str(path))

    bare = _tiny_backbone()
    assert K3.load_lora(bare, path) == list(every)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(trained.weights, bare.weights))
    assert K3.trainable_count(bare) == K3.trainable_count(trained)

    fewer = _tiny_backbone()
    K3.enable_lora(fewer, 2)                       # query and value only: KerasHub would load 2 of 6 layers
    with pytest.raises(ValueError, match="adapts 6 layers .* this backbone 2"):
        K3.load_lora(fewer, path)
    with pytest.raises(ValueError, match="holds rank 2, not rank 4"):
        K3.load_lora(_tiny_backbone(), path, rank=4)
    junk = tmp_path / "junk.lora.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a KerasHub LoRA file"):
        K3.load_lora(_tiny_backbone(), junk)
