"""Adapters and LoRA on the transformers TensorFlow BERT classes (coldstart.models.peft).

Most tests use a tiny random BERT saved once per session, so a "pretrained" base can be loaded
twice with identical weights; one test checks the parameter shares on the real all-MiniLM-L6-v2.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import models_folder

import coldstart
from coldstart.models import peft
from coldstart.models.bert import CrossEncoder, TwoTower
from coldstart.tools import peft_memory

tf = coldstart.import_tensorflow()
pytestmark = pytest.mark.slow

HIDDEN, LAYERS, INTER = 16, 2, 32
IDS = tf.constant([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]])
MASK = tf.cast(IDS != 0, tf.int32)


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory):
    from transformers import BertConfig, TFBertModel

    tf.keras.utils.set_random_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2,
                     intermediate_size=INTER, max_position_embeddings=16)
    model = TFBertModel(cfg)
    model(IDS)
    folder = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(str(folder))
    return folder


def load(base_dir):
    from transformers import TFBertModel

    return TFBertModel.from_pretrained(str(base_dir))


def hidden(model):
    return model(input_ids=IDS, attention_mask=MASK).last_hidden_state.numpy()


def batch():
    rng = np.random.default_rng(1)
    ctx = rng.integers(4, 40, size=(8, 6)).astype(np.int32)
    items = rng.integers(4, 40, size=(8, 3)).astype(np.int32)
    return {"context_ids": ctx, "item_ids": items, "item": np.arange(8, dtype=np.int32)}


def train(model, steps=3, lr=1e-2):
    tower = TwoTower(model, temperature=0.1)
    tower.compile(optimizer=tf.keras.optimizers.Adam(lr))
    data = tf.data.Dataset.from_tensors(batch()).repeat(steps)
    tower.fit(data, epochs=1, verbose=0)
    return tower


def randomize(variables, seed=0):
    rng = np.random.default_rng(seed)
    for v in variables.values():
        v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))


class _Tokenizer:
    """Enough of a tokenizer for coldstart.models.encoders.encode: a text of digits -> token ids."""

    def __call__(self, texts, max_length, truncation, padding):
        return {"input_ids": [[2] + [4 + int(c) for c in t][: max_length - 2] + [3] for t in texts]}


def test_adapters_and_lora_leave_outputs_unchanged_at_init(base_dir):
    from coldstart.models.encoders import encode

    model = load(base_dir)
    ref = hidden(model)
    texts = ["123", "98765", "5"]
    vectors = encode(texts, _Tokenizer(), model)   # traces and caches a forward pass on the model
    peft.add_adapters(model, size=4)
    assert np.array_equal(hidden(model), ref)
    peft.add_lora(model, rank=2, alpha=4)
    assert np.array_equal(hidden(model), ref)
    assert np.allclose(encode(texts, _Tokenizer(), model), vectors, atol=1e-6)
    randomize(peft.new_weights(model))             # and they do change it once trained,
    assert np.abs(hidden(model) - ref).max() > 1e-3
    # also through encode(): the pass traced before the layers were added is not reused
    assert np.abs(encode(texts, _Tokenizer(), model) - vectors).max() > 1e-3


def test_adapters_sit_after_both_output_projections_of_every_layer(base_dir):
    model = load(base_dir)
    layers = model.bert.encoder.layer
    originals = [(layer.attention.dense_output.dense, layer.bert_output.dense) for layer in layers]
    peft.add_adapters(model, size=4)
    assert list(peft.peft_layers(model)) == [f"layer.{i}.adapter.{s}" for i in range(LAYERS)
                                             for s in ("attention", "ffn")]
    for layer, (att, ffn) in zip(layers, originals):
        assert isinstance(layer.attention.dense_output.dense, peft.Adapter)
        assert layer.attention.dense_output.dense.base is att     # wraps the pretrained projection itself
        assert layer.bert_output.dense.base is ffn


def test_adapter_computes_the_houlsby_bottleneck():
    base = tf.keras.layers.Dense(6)
    base.build((None, 5))
    layer = peft.Adapter(base, size=3)
    randomize({"d": layer.down.kernel, "db": layer.down.bias, "u": layer.up.kernel, "ub": layer.up.bias})
    x = np.random.default_rng(2).normal(size=(2, 4, 5)).astype(np.float32)
    h = x @ base.kernel.numpy() + base.bias.numpy()
    z = h @ layer.down.kernel.numpy() + layer.down.bias.numpy()
    gelu = tf.keras.activations.gelu(z).numpy()
    expected = h + gelu @ layer.up.kernel.numpy() + layer.up.bias.numpy()
    assert np.allclose(layer(x).numpy(), expected, atol=1e-5)


def test_lora_adds_the_scaled_low_rank_product():
    base = tf.keras.layers.Dense(6)
    base.build((None, 5))
    layer = peft.LoRADense(base, rank=2, alpha=8)
    assert layer.A.shape == (5, 2) and layer.B.shape == (2, 6) and not layer.B.numpy().any()
    randomize({"B": layer.B})
    x = np.random.default_rng(3).normal(size=(2, 4, 5)).astype(np.float32)
    expected = x @ base.kernel.numpy() + base.bias.numpy() + 4.0 * (x @ layer.A.numpy() @ layer.B.numpy())
    assert np.allclose(layer(x).numpy(), expected, atol=1e-5)


def test_new_parameter_counts(base_dir):
    model = peft.add_adapters(load(base_dir), size=4)
    per_adapter = HIDDEN * 4 + 4 + 4 * HIDDEN + HIDDEN
    assert peft.trainable_report(model)["new"] == LAYERS * 2 * per_adapter
    model = peft.add_lora(load(base_dir), rank=2, targets=("query", "value", "intermediate"))
    lora = LAYERS * (2 * 2 * (HIDDEN + HIDDEN) + 2 * (HIDDEN + INTER))
    assert peft.trainable_report(model)["new"] == lora
    assert peft.peft_config(model)["lora"]["targets"] == ["query", "value", "intermediate"]


def test_freeze_base_leaves_only_new_weights_and_optionally_layernorm(base_dir):
    model = peft.add_lora(peft.add_adapters(load(base_dir), size=4), rank=2)
    model = TwoTower(model).encoder   # freezing works through a wrapping Keras model too
    peft.freeze_base(model)

    def ids(variables):
        return {id(v) for v in variables}

    assert ids(model.trainable_weights) == ids(peft.new_weights(model).values())
    report = peft.trainable_report(model)
    assert report["trainable"] == report["new"] and 0 < report["trainable_percent"] < 100
    peft.freeze_base(model, train_layernorm=True)
    norms = peft.layernorm_weights(model)
    assert len(norms) == LAYERS * 2 * 2
    assert ids(model.trainable_weights) == ids(peft.new_weights(model).values()) | ids(norms.values())


def test_a_training_step_changes_only_the_new_weights(base_dir):
    model = peft.freeze_base(peft.add_lora(peft.add_adapters(load(base_dir), size=4), rank=2))
    new = {id(v) for v in peft.new_weights(model).values()}
    before = {id(v): v.numpy().copy() for v in model.weights}
    train(model, steps=3)
    changed = {id(v) for v in model.weights if not np.array_equal(before[id(v)], v.numpy())}
    assert changed and changed <= new                            # nothing pretrained moved
    ups = [v for k, v in peft.new_weights(model).items() if k.endswith(("up.kernel", ".B"))]
    assert all(id(v) in changed for v in ups)                    # and the zero-initialised halves learned


def test_save_load_round_trip_gives_identical_outputs(base_dir, tmp_path):
    model = peft.freeze_base(peft.add_adapters(load(base_dir), size=4), train_layernorm=True)
    train(model, steps=3)
    out = hidden(model)
    peft.save_peft(model, tmp_path / "ck")
    cfg = json.loads((tmp_path / "ck" / peft.CONFIG_FILE).read_text())
    assert cfg["adapter"] == {"size": 4} and cfg["layernorm"] is True and cfg["base_model"] == base_dir.name
    fresh = load(base_dir)                                       # no adapters yet: load_peft adds them
    assert not np.allclose(hidden(fresh), out)
    peft.load_peft(fresh, tmp_path / "ck")
    assert np.array_equal(hidden(fresh), out)


def test_lora_round_trip_and_checkpoint_holds_only_new_weights(base_dir, tmp_path):
    from safetensors.numpy import load_file

    model = peft.freeze_base(peft.add_lora(load(base_dir), rank=2, alpha=4, targets=("query", "value", "output")))
    train(model, steps=3)
    peft.save_peft(model, tmp_path / "lora")
    stored = load_file(str(tmp_path / "lora" / peft.WEIGHTS_FILE))
    assert set(stored) == set(peft.new_weights(model))           # no pretrained weight, no LayerNorm
    assert sorted(os.listdir(tmp_path / "lora")) == [peft.CONFIG_FILE, peft.WEIGHTS_FILE]
    fresh = peft.load_peft(load(base_dir), tmp_path / "lora")
    assert np.array_equal(hidden(fresh), hidden(model))
    model.save_pretrained(str(tmp_path / "full"))
    size = peft.checkpoint_size(tmp_path / "lora")
    assert size == sum(p.stat().st_size for p in (tmp_path / "lora").iterdir())
    assert peft.checkpoint_size(tmp_path / "full") > 5 * size


def test_save_is_atomic(base_dir, tmp_path, monkeypatch):
    model = peft.add_adapters(load(base_dir), size=4)
    target = tmp_path / "ck"
    peft.save_peft(model, target)
    old = (target / peft.WEIGHTS_FILE).read_bytes()
    randomize(peft.new_weights(model))

    import safetensors.numpy

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        peft.save_peft(model, target)
    assert (target / peft.WEIGHTS_FILE).read_bytes() == old      # the old checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # and no temporary folder is left


def test_load_refuses_checkpoints_that_do_not_fit(base_dir, tmp_path):
    model = peft.add_adapters(load(base_dir), size=4)
    peft.save_peft(model, tmp_path / "a4")
    other = peft.add_adapters(load(base_dir), size=8)
    before = [v.numpy().copy() for v in peft.new_weights(other).values()]
    with pytest.raises(ValueError, match="shape"):
        peft.load_peft(other, tmp_path / "a4")
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, peft.new_weights(other).values()))
    lora = peft.add_lora(load(base_dir), rank=2)
    with pytest.raises(ValueError, match="missing"):
        peft.load_peft(lora, tmp_path / "a4")
    with pytest.raises(FileNotFoundError, match="not a PEFT checkpoint"):
        peft.load_peft(load(base_dir), tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        peft.save_peft(model, tmp_path / "file")


def test_clear_errors_for_bad_arguments(base_dir):
    model = load(base_dir)
    with pytest.raises(ValueError, match="positive"):
        peft.add_adapters(model, size=0)
    with pytest.raises(ValueError, match="unknown LoRA targets.*query, key, value"):
        peft.add_lora(model, rank=2, targets=("querry",))
    with pytest.raises(ValueError, match="add_adapters or add_lora first"):
        peft.freeze_base(model)
    peft.add_adapters(model, size=4)
    with pytest.raises(ValueError, match="already has adapters"):
        peft.add_adapters(model, size=4)
    with pytest.raises(TypeError, match="no transformers TFBertEncoder"):
        peft.add_adapters(tf.keras.Sequential([tf.keras.layers.Dense(2, input_shape=(3,))]))


def test_works_inside_a_classification_head(base_dir, tmp_path):
    from transformers import TFBertForSequenceClassification

    clf = TFBertForSequenceClassification.from_pretrained(str(base_dir), num_labels=1)
    model = CrossEncoder(clf)
    inputs = {"input_ids": IDS, "token_type_ids": tf.zeros_like(IDS)}
    ref = model(inputs).numpy()
    peft.freeze_base(peft.add_lora(model, rank=2))
    assert np.array_equal(model(inputs).numpy(), ref)
    new = {id(v) for v in peft.new_weights(model).values()}
    assert {id(v) for v in model.trainable_weights} == new
    clf.classifier.trainable = True      # a new head is not pretrained: make it trainable on purpose
    assert {id(v) for v in model.trainable_weights} == new | {id(v) for v in clf.classifier.weights}


def test_adapter_set_switches_and_switches_back_exactly(base_dir):
    model = load(base_dir)
    ref = hidden(model)
    adapters = peft.AdapterSet(model, size=4)
    assert np.array_equal(hidden(model), ref)                     # nothing active: the frozen model
    adapters.add("uk").add("rest")
    with pytest.raises(ValueError, match="taken"):
        adapters.add("uk")
    adapters.activate("uk")
    train(model, steps=3)
    adapters.activate("rest")
    train(model, steps=3, lr=3e-2)
    out_rest = hidden(model)
    adapters.activate("uk")
    out_uk = hidden(model)
    assert np.abs(out_uk - out_rest).max() > 1e-3 and np.abs(out_uk - ref).max() > 1e-3
    adapters.activate("rest")
    assert np.array_equal(hidden(model), out_rest)                # back, bit for bit
    adapters.activate(None)
    assert np.array_equal(hidden(model), ref)
    adapters.activate("uk")
    assert np.array_equal(hidden(model), out_uk)
    assert adapters.names == ["uk", "rest"] and adapters.active == "uk"
    with pytest.raises(KeyError, match="have: \\['uk', 'rest'\\]"):
        adapters.activate("de")


def test_adapter_set_copies_and_saves_named_adapters(base_dir, tmp_path):
    model = load(base_dir)
    adapters = peft.AdapterSet(model, size=4).add("all")
    adapters.activate("all")
    train(model, steps=3)
    out_all = hidden(model)
    adapters.add("uk", start="all").activate("uk")
    assert np.array_equal(hidden(model), out_all)                 # a copy starts where "all" is
    adapters.save("all", tmp_path / "all")
    fresh = peft.load_peft(load(base_dir), tmp_path / "all")      # a plain checkpoint of one adapter
    assert np.array_equal(hidden(fresh), out_all)
    other = peft.AdapterSet(load(base_dir), size=4).load("served", tmp_path / "all").activate("served")
    assert np.array_equal(hidden(other.model), out_all)
    kept = peft.AdapterSet(fresh, keep="all")                     # trained adapters already in the model
    assert kept.names == ["all"] and kept.active == "all" and np.array_equal(hidden(fresh), out_all)
    kept.activate(None)
    assert np.array_equal(hidden(fresh), hidden(load(base_dir)))


def test_measure_training_reports_step_time_and_memory(base_dir):
    result = peft_memory.measure_training("adapter", model_name=str(base_dir), batch_size=4, seq_len=6, steps=2, size=4)
    assert result["kind"] == "adapter" and result["step_seconds"] > 0
    assert result["peak_rss_mb"] >= result["rss_before_training_mb"] > 50
    assert result["peak_reset"] is True                          # Linux: the peak of training alone
    assert result["trainable"] == result["new"] == LAYERS * 2 * (HIDDEN * 4 + 4 + 4 * HIDDEN + HIDDEN)
    with pytest.raises(ValueError, match="kind must be"):
        peft_memory.measure_training("prefix", model_name=str(base_dir), steps=1)


def test_measure_methods_gives_each_method_its_own_process(base_dir):
    results = peft_memory.measure_methods(("full", "lora"), model_name=str(base_dir), batch_size=4, seq_len=6, steps=2,
                                   rank=2, overlap=True)
    assert [r["kind"] for r in results] == ["full", "lora"]
    full, lora = results
    assert lora["new"] == lora["trainable"] == LAYERS * 2 * 2 * (HIDDEN + HIDDEN)
    assert full["new"] == 0 and full["trainable"] == full["total"] > lora["trainable"]
    assert all(r["step_seconds"] > 0 and r["peak_rss_mb"] >= r["rss_before_training_mb"] > 50 for r in results)


def test_measure_methods_measures_the_lora_targets_it_is_given(base_dir):
    """The LoRA whose cost is reported is the one trained: every projection, not the default two."""
    from coldstart.config import LORA_EVERY

    (lora,) = peft_memory.measure_methods(("lora",), model_name=str(base_dir), batch_size=4, seq_len=6, steps=1,
                                          rank=2, overlap=True, lora_targets=LORA_EVERY)
    d, f = HIDDEN, INTER
    assert lora["trainable"] == LAYERS * 2 * (4 * (d + d) + (d + f) + (f + d))   # rank 2 x (in + out) per projection


def test_measure_methods_reports_a_failing_or_slow_child_and_leaves_no_process(tmp_path, base_dir):
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(RuntimeError, match="(?s)measuring adapter failed .exit 1.*no-such-model. does not exist"):
        peft_memory.measure_methods(("adapter",), model_name=str(tmp_path / "no-such-model"), steps=1, overlap=False)
    with pytest.raises(RuntimeError, match="measuring full timed out"):
        peft_memory.measure_methods(("full", "adapter"), model_name=str(base_dir), steps=1, timeout=1)
    assert {p.pid for p in psutil.Process().children(recursive=True)} == before


def test_minilm_shares_of_trainable_parameters():
    folder = models_folder() / "all-MiniLM-L6-v2"
    if not (folder / "config.json").is_file():
        pytest.skip(f"all-MiniLM-L6-v2 is not at {folder}")
    from transformers import TFAutoModel

    model = peft.freeze_base(peft.add_adapters(TFAutoModel.from_pretrained(str(folder)), size=64))
    report = peft.trainable_report(model)
    assert report["new"] == 6 * 2 * (384 * 64 + 64 + 64 * 384 + 384)
    assert 2.5 < report["trainable_percent"] < 2.6                 # the chapter's target: at most 3%
    model = peft.freeze_base(peft.add_lora(TFAutoModel.from_pretrained(str(folder)), rank=8))
    assert peft.trainable_report(model)["new"] == 6 * 2 * 8 * (384 + 384)
    assert 0.3 < peft.trainable_report(model)["trainable_percent"] < 0.35


def test_a_failed_load_leaves_the_model_unchanged_and_the_next_good_load_works(base_dir, tmp_path):
    """Issue 25, item 7: the checkpoint is checked against the layers it needs before they are inserted."""
    import shutil

    trained = peft.add_adapters(load(base_dir), size=4)
    randomize(peft.new_weights(trained))
    good = peft.save_peft(trained, tmp_path / "good")
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    config = json.loads((bad / peft.CONFIG_FILE).read_text())
    config["adapter"]["size"] = 8          # the weights are still of size 4
    (bad / peft.CONFIG_FILE).write_text(json.dumps(config))

    fresh = load(base_dir)
    before = hidden(fresh)
    with pytest.raises(ValueError, match="shape"):
        peft.load_peft(fresh, bad)
    assert peft.peft_layers(fresh) == {}
    np.testing.assert_array_equal(hidden(fresh), before)
    peft.load_peft(fresh, good)
    np.testing.assert_allclose(hidden(fresh), hidden(trained), atol=1e-6)
