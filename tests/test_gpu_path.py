"""The `gpu` profile's settings, run on a CPU: mixed precision (float16 with loss scaling, bfloat16 as
on a TPU), XLA, and the chapters' model classes trained and saved under each policy.

Nothing here runs on a GPU or a TPU: the same Keras and TensorFlow code paths run on the CPU, which
is what can be checked without one (float16 underflow, the loss scale optimizer, XLA compilation,
saving float16-computing models). Speed and numerical agreement on a real GPU are not covered.

The loss-scaling test makes a batch whose gradients underflow in float16: the two-tower's logits are
multiplied by ``TINY`` (a test subclass overriding ``call`` only, so the package's ``train_step`` runs).
Without loss scaling the BERT weights' float16 gradients are zero; with it the update equals the
float32 update.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import coldstart
from coldstart.models import peft
from coldstart.models.bert import CrossEncoder, TwoTower

tf = coldstart.import_tensorflow()
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

VOCAB, HIDDEN, LAYERS = 64, 32, 2
TINY = 1e-6          # logits scale that makes float16 gradients underflow without loss scaling
LR = 1e3 / TINY      # SGD step large enough that the (tiny) update is measurable in float32 weights


def _config():
    from transformers import BertConfig

    return BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="module")
def initial_weights():
    """One float32 tiny BERT's weights: every model below starts from them."""
    from transformers import TFBertModel

    tf.keras.mixed_precision.set_global_policy("float32")
    tf.keras.utils.set_random_seed(0)
    model = TFBertModel(_config())
    model(input_ids=tf.constant([[2, 5, 3]]))
    return model.get_weights()


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def policy(request):
    tf.keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    tf.keras.mixed_precision.set_global_policy("float32")


def _encoder(weights):
    from transformers import TFBertModel

    model = TFBertModel(_config())
    model(input_ids=tf.constant([[2, 5, 3]]))
    model.set_weights(weights)
    return model


def _batch(n=8, length=12, seed=1):
    """A two-tower batch of the `gpu` profile's shape family (context and item token ids, item codes)."""
    rng = np.random.default_rng(seed)
    return {"context_ids": rng.integers(4, VOCAB, size=(n, length)).astype(np.int32),
            "item_ids": rng.integers(4, VOCAB, size=(n, length // 2)).astype(np.int32),
            "item": np.arange(n, dtype=np.int32)}


class TinyLogits(TwoTower):
    """The package's TwoTower with logits scaled by ``TINY``: its train_step is the package's."""

    def call(self, batch, training=False):
        return super().call(batch, training) * TINY


def _update(weights, policy_name, jit):
    """The change of every encoder weight after one SGD step of TinyLogits under ``policy_name``."""
    tf.keras.mixed_precision.set_global_policy(policy_name)
    try:
        tower = TinyLogits(_encoder(weights), temperature=0.05)
        tower.compile(optimizer=tf.keras.optimizers.SGD(LR), jit_compile=jit)
        if policy_name == "mixed_float16":
            assert isinstance(tower.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        before = [v.numpy().copy() for v in tower.encoder.trainable_variables]
        tower.fit(tf.data.Dataset.from_tensors(_batch()), epochs=1, verbose=0)
        return [v.numpy() - b for v, b in zip(tower.encoder.trainable_variables, before)]
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")


def _relative_error(update, reference):
    diff = np.sqrt(sum(float(np.sum((u - r) ** 2)) for u, r in zip(update, reference)))
    return diff / np.sqrt(sum(float(np.sum(r ** 2)) for r in reference))


@pytest.mark.parametrize("jit", [False, True], ids=["eager-graph", "xla"])
def test_the_two_tower_scales_the_loss_under_mixed_float16(initial_weights, jit):
    reference = _update(initial_weights, "float32", jit=False)
    assert _relative_error([np.zeros_like(r) for r in reference], reference) == 1.0   # the update is not 0
    mixed = _update(initial_weights, "mixed_float16", jit=jit)
    # without loss scaling most float16 gradients underflow: the update is nowhere near the float32 one
    assert _relative_error(mixed, reference) < 0.05


def test_mixed_bfloat16_needs_no_loss_scale_and_updates_like_float32(initial_weights):
    reference = _update(initial_weights, "float32", jit=False)
    mixed = _update(initial_weights, "mixed_bfloat16", jit=True)
    assert _relative_error(mixed, reference) < 0.1   # bfloat16 keeps float32's range, 8 bits of precision


# ------------------------------------------------------------------------------------------------
# every chapter's model class trains one step and saves / loads under the policy
# ------------------------------------------------------------------------------------------------
def _fit_two_tower(encoder, jit):
    tower = TwoTower(encoder, temperature=0.05)
    tower.compile(optimizer=tf.keras.optimizers.Adam(1e-3), jit_compile=jit)
    history = tower.fit(tf.data.Dataset.from_tensors(_batch()).repeat(2), epochs=1, verbose=0)
    loss = history.history["loss"][-1]
    assert np.isfinite(loss) and loss > 0
    return tower


def test_two_tower_trains_and_its_encoder_saves_and_loads(initial_weights, policy, tmp_path):
    from transformers import TFAutoModel

    tower = _fit_two_tower(_encoder(initial_weights), jit=True)
    assert tower.encoder.bert.embeddings.compute_dtype == policy.split("_")[1]
    tower.encoder.save_pretrained(str(tmp_path / "enc"))
    loaded = TFAutoModel.from_pretrained(str(tmp_path / "enc"), local_files_only=True)
    ids = tf.constant(_batch()["context_ids"])
    np.testing.assert_allclose(loaded(input_ids=ids).last_hidden_state.numpy().astype(np.float32),
                               tower.encoder(input_ids=ids).last_hidden_state.numpy().astype(np.float32),
                               rtol=0.02, atol=0.02)
    for v in loaded.trainable_variables:   # master weights stay float32 under both policies
        assert v.dtype == tf.float32


def test_cross_encoder_trains_and_saves_and_loads(policy, tmp_path):
    from transformers import TFAutoModelForSequenceClassification

    tf.keras.utils.set_random_seed(0)
    config = _config()
    config.num_labels = 1
    classifier = TFAutoModelForSequenceClassification.from_config(config)
    classifier(input_ids=tf.constant([[2, 5, 3]]))   # built on its own, as from_pretrained does
    model = CrossEncoder(classifier)
    batch = _batch()
    x = {"input_ids": batch["context_ids"], "token_type_ids": np.zeros_like(batch["context_ids"])}
    y = np.array([1, 0] * 4, np.float32)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), jit_compile=True,
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    history = model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(2), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    classifier.save_pretrained(str(tmp_path / "ce"))
    loaded = CrossEncoder(TFAutoModelForSequenceClassification.from_pretrained(str(tmp_path / "ce"),
                                                                               local_files_only=True))
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=0.02, atol=0.02)


@pytest.mark.parametrize("kind", ["adapter", "lora", "market adapters"])
def test_peft_models_train_and_save_and_load(initial_weights, policy, kind, tmp_path):
    encoder = _encoder(initial_weights)
    if kind == "lora":
        peft.add_lora(encoder, rank=2)
        peft.freeze_base(encoder)
    elif kind == "adapter":
        peft.add_adapters(encoder, size=4)
        peft.freeze_base(encoder)
    else:   # notebook 09: one frozen encoder, a named adapter per market, switched at serving time
        markets = peft.AdapterSet(encoder, size=4)
        markets.add("UK").add("France").activate("France")
    before = {k: v.numpy().copy() for k, v in peft.new_weights(encoder).items()}
    _fit_two_tower(encoder, jit=False)
    after = {k: v.numpy() for k, v in peft.new_weights(encoder).items()}
    assert any(not np.array_equal(before[k], after[k]) for k in before), "the new weights did not train"
    if kind == "market adapters":
        markets.save("France", tmp_path / "ckpt")
        other = peft.AdapterSet(_encoder(initial_weights), size=4).load("France", tmp_path / "ckpt")
        other.activate("France")
        ids = tf.constant(_batch()["context_ids"])
        np.testing.assert_allclose(other.model(input_ids=ids).last_hidden_state.numpy().astype(np.float32),
                                   encoder(input_ids=ids).last_hidden_state.numpy().astype(np.float32),
                                   rtol=0.02, atol=0.02)
        return
    peft.save_peft(encoder, tmp_path / "ckpt")
    fresh = _encoder(initial_weights)
    peft.load_peft(fresh, tmp_path / "ckpt")
    ids = tf.constant(_batch()["context_ids"])
    np.testing.assert_allclose(fresh(input_ids=ids).last_hidden_state.numpy().astype(np.float32),
                               encoder(input_ids=ids).last_hidden_state.numpy().astype(np.float32),
                               rtol=0.02, atol=0.02)


# ------------------------------------------------------------------------------------------------
# a distributed run shaped like the TPU one: MirroredStrategy over two logical CPU devices
# ------------------------------------------------------------------------------------------------
_MIRRORED = r"""
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])
import test_gpu_path as t
from coldstart.models.bert import TwoTower
from transformers import TFBertModel

tf.keras.utils.set_random_seed(0)
base = TFBertModel(t._config()); base(input_ids=tf.constant([[2, 5, 3]])); weights = base.get_weights()

def update(strategy, policy, batch):
    tf.keras.mixed_precision.set_global_policy(policy)
    with strategy.scope():
        tower = TwoTower(t._encoder(weights), temperature=0.05)
        tower.compile(optimizer=tf.keras.optimizers.SGD(1.0))
    before = [v.numpy().copy() for v in tower.encoder.trainable_variables]
    n = len(batch["item"])
    tower.fit(tf.data.Dataset.from_tensor_slices(batch).batch(n), epochs=1, verbose=0)
    tf.keras.mixed_precision.set_global_policy("float32")
    return [v.numpy() - b for v, b in zip(tower.encoder.trainable_variables, before)]

full = t._batch(n=8)
halves = [{k: v[:4] for k, v in full.items()}, {k: v[4:] for k, v in full.items()}]
# two replicas of 4 examples: each replica's in-batch softmax sees its half, and the gradients are
# summed over replicas, so with the loss divided by the replica count the update is the mean of the
# two halves' single-device updates
one = [(a + b) / 2 for a, b in zip(*(update(tf.distribute.get_strategy(), "float32", h) for h in halves))]
mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert mirrored.num_replicas_in_sync == 2
two = update(mirrored, "float32", full)
err = np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(one, two))) / np.sqrt(sum((a ** 2).sum() for a in one))
bf16 = update(mirrored, "mixed_bfloat16", full)
print("error", err)
print("bf16_finite", all(np.isfinite(u).all() for u in bf16) and any(np.abs(u).sum() > 0 for u in bf16))
"""


def test_a_two_replica_mirrored_run_under_mixed_bfloat16(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", _MIRRORED, str(ROOT / "tests")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert float(lines["error"]) < 1e-4        # the loss is divided by the replica count
    assert lines["bf16_finite"] == "True"
