"""Training plumbing: bucketed tf.data, the ranking callback, strategies (two logical CPUs)."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import coldstart
from coldstart import training
from coldstart.models.encoders import padded_batches

tf = coldstart.import_tensorflow()


def test_bucketed_dataset_pads_each_batch_to_its_own_longest():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=200)
    seqs = [list(range(1, n + 1)) for n in lengths]
    items = [list(range(1, 1 + (i % 7) + 1)) for i in range(200)]
    ds = training.bucketed_dataset({"a": seqs, "b": items, "row": np.arange(200, dtype=np.int32)}, lengths, 16, seed=1)
    seen, widths = [], []
    for batch in ds:
        a, rows = batch["a"].numpy(), batch["row"].numpy()
        assert a.shape[1] == lengths[rows].max()                 # dynamic padding: batch max, not 59
        assert batch["b"].shape[1] == max(len(items[r]) for r in rows)
        for r, row in zip(rows, a):
            assert row[: lengths[r]].tolist() == seqs[r] and not row[lengths[r]:].any()
        spread = lengths[rows].max() - lengths[rows].min()
        widths.append(spread)
        seen += rows.tolist()
    assert sorted(seen) == list(range(200))                      # every example exactly once
    assert np.median(widths) < 16                                  # bucketing keeps lengths together
    assert sum(np.prod(b["a"].shape) for b in ds) < 0.7 * 200 * lengths.max()


def test_bucketed_dataset_keeps_labels_aligned():
    lengths = np.array([3, 9, 1, 20, 5])
    seqs = [[7] * n for n in lengths]
    labels = lengths.astype(np.float32) * 10
    for x, y in training.bucketed_dataset({"ids": seqs}, lengths, 2, labels=labels):
        assert np.allclose(y.numpy(), (x["ids"].numpy() == 7).sum(axis=1) * 10)


def test_bucketed_dataset_order_is_fixed_by_the_seed_and_repeats_each_epoch():
    lengths = np.arange(1, 41)
    data = {"ids": [[5] * n for n in lengths], "row": np.arange(40, dtype=np.int32)}

    def rows(ds):
        return [b["row"].numpy().tolist() for b in ds]

    first = rows(training.bucketed_dataset(data, lengths, 4, seed=0).repeat(2))
    assert first[: len(first) // 2] == first[len(first) // 2:]                  # every epoch the same batches
    assert first == rows(training.bucketed_dataset(data, lengths, 4, seed=0).repeat(2))
    assert first != rows(training.bucketed_dataset(data, lengths, 4, seed=1).repeat(2))
    unshuffled = rows(training.bucketed_dataset(data, lengths, 4, shuffle=False))
    assert [r for b in unshuffled for r in b] == list(range(40))                # in order: buckets fill one by one


def test_bucketed_dataset_runs_without_the_autotuner_and_survives_repeat():
    # the autotuner's thread made the end of some `fit` calls wait ~10 s here; the pipeline turns it off,
    # and the options must reach the dataset a notebook actually iterates (after .repeat())
    lengths = np.arange(1, 21)
    ds = training.bucketed_dataset({"ids": [[5] * n for n in lengths]}, lengths, 4).repeat()
    assert ds.options().autotune.enabled is False


def test_length_grouped_batches_sort_within_windows_and_pad_less_than_buckets():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=203)
    data = {"ids": [[5] * n for n in lengths], "row": np.arange(203, dtype=np.int32)}
    labels = lengths.astype(np.float32)

    def batches(**kw):
        return [(x["ids"].numpy(), x["row"].numpy(), y.numpy())
                for x, y in training.bucketed_dataset(data, lengths, 8, labels=labels, seed=3, **kw)]

    grouped, buckets = batches(group_window=50), batches()
    rows = [b[1] for b in grouped]
    assert sorted(np.concatenate(rows).tolist()) == list(range(203))                 # every example once
    assert [len(r) for r in rows] == [8] * 25 + [3]                                  # one partial batch, last
    assert len(buckets) > len(grouped)                                               # buckets: one partial each
    for ids, row, y in grouped:
        assert ids.shape[1] == lengths[row].max() and np.array_equal(y, lengths[row])   # padded to own longest
    # one window holds all 203: consecutive batches of a fully sorted order, so they never overlap in length
    spans = sorted((lengths[r].min(), lengths[r].max()) for r in rows[:-1])
    assert all(hi <= lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:]))
    assert [lengths[r].max() for r in rows[:-1]] != sorted(lengths[r].max() for r in rows[:-1])  # batches shuffled
    assert sum(b[0].size for b in grouped) < sum(b[0].size for b in buckets)          # less padding
    assert [b[1].tolist() for b in batches(group_window=50)] == [r.tolist() for r in rows]  # fixed by the seed
    # windows of 2 batches: sorted only within each run of 16 shuffled examples
    small = batches(group_window=2)
    assert sum(b[0].size for b in small) > sum(b[0].size for b in grouped)


def test_length_grouped_batches_unshuffled_keep_each_window_in_length_order():
    lengths = np.array([5, 1, 4, 2, 3, 9, 7, 8, 6])
    data = {"ids": [[5] * n for n in lengths], "row": np.arange(9, dtype=np.int32)}
    got = [b["row"].numpy().tolist()
           for b in training.bucketed_dataset(data, lengths, 2, shuffle=False, group_window=2)]
    # windows of 2 batches (4 examples) in input order, each sorted by length; the last window is the 9th alone
    assert got == [[1, 3], [2, 0], [4, 6], [7, 5], [8]]


def test_length_grouped_batches_reject_a_window_below_one():
    with pytest.raises(ValueError, match="group_window must be at least 1"):
        training.bucketed_dataset({"ids": [[1], [2, 3]]}, np.array([1, 2]), 2, group_window=0)


def test_warmup_schedule_rises_linearly_then_stays():
    schedule = training.warmup_schedule(2e-3, 4)
    values = [float(schedule(step)) for step in range(7)]
    np.testing.assert_allclose(values, [5e-4, 1e-3, 1.5e-3, 2e-3, 2e-3, 2e-3, 2e-3], rtol=1e-6)
    assert schedule.get_config() == {"peak": 2e-3, "steps": 4}


@pytest.mark.parametrize("peak, steps", [(0.0, 4), (-1e-3, 4), (1e-3, 0)])
def test_warmup_schedule_rejects_bad_arguments(peak, steps):
    with pytest.raises(ValueError, match="warmup_schedule needs"):
        training.warmup_schedule(peak, steps)


def test_padded_batches_cover_everything_once():
    seqs = [[1] * n for n in (3, 1, 4, 1, 5)]
    got = []
    for idx, ids, mask in padded_batches(seqs, 2, np.argsort([3, 1, 4, 1, 5])):
        assert ids.shape == mask.shape and ids.shape[1] == max(len(seqs[i]) for i in idx)
        assert (mask.sum(axis=1) == [len(seqs[i]) for i in idx]).all()
        got += list(idx)
    assert sorted(got) == [0, 1, 2, 3, 4]


def test_default_strategy_and_float32_on_cpu(capsys):
    strategy = training.pick_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert training.configure_precision(strategy) == {"policy": "float32", "jit_compile": False}
    assert "strategy:" in capsys.readouterr().out


def _adam_runs(optimizers, steps=6, seed=0):
    """The same weights and gradients (one dense, one IndexedSlices with a repeated row) through each
    optimizer; returns the final weights per optimizer and the initial ones."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(7, 4)).astype(np.float32)]
    grads = [[rng.normal(size=(5, 3)).astype(np.float32),
              tf.IndexedSlices(tf.constant(rng.normal(size=(3, 4)).astype(np.float32)), tf.constant([1, 4, 1]),
                               tf.constant([7, 4]))] for _ in range(steps)]
    out = []
    for opt in optimizers:
        vs = [tf.Variable(x) for x in init]
        for g in grads:
            opt.apply_gradients(zip(g, vs))
        out.append([v.numpy() for v in vs])
    return out, init


def test_fused_adam_matches_keras_adam_on_dense_and_sparse_gradients():
    schedule = training.warmup_schedule(1e-2, 3)
    (stock, fused), init = _adam_runs([tf.keras.optimizers.Adam(schedule), training.FusedAdam(schedule)])
    for s, f, w0 in zip(stock, fused, init):
        assert np.abs(s - w0).max() > 1e-2                       # the updates are large ...
        np.testing.assert_allclose(f, s, rtol=0, atol=1e-6)      # ... and agree to float32 rounding
    assert np.array_equal(fused[1][[0, 2, 3, 5, 6]], stock[1][[0, 2, 3, 5, 6]])  # rows never seen stay put in both
    wrong, _ = _adam_runs([training.FusedAdam(schedule, beta_1=0.5)])
    assert np.abs(wrong[0][0] - stock[0]).max() > 1e-3            # the comparison can tell optimizers apart


def test_fused_adam_runs_one_fused_kernel_per_weight():
    def kernels(optimizer):
        v = [tf.Variable(tf.ones((4, 4))), tf.Variable(tf.ones((10, 2)))]
        optimizer.build(v)
        grads = [tf.ones((4, 4)), tf.IndexedSlices(tf.ones((1, 2)), tf.constant([3]), tf.constant([10, 2]))]
        graph = tf.function(lambda: optimizer.apply_gradients(zip(grads, v))).get_concrete_function().graph
        return [op.type for op in graph.get_operations()].count("ResourceApplyAdam")

    assert kernels(training.FusedAdam(1e-3)) == 2                 # the dense weight and the embedding-like one
    assert kernels(tf.keras.optimizers.Adam(1e-3)) == 0           # stock Adam: separate ops
    assert kernels(training.FusedAdam(1e-3, amsgrad=True)) == 0   # AMSGrad: the stock update


def test_fused_adam_trains_under_mixed_precision_and_xla():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32))[:, None]
    try:
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
        model = tf.keras.Sequential([tf.keras.layers.Dense(8, activation="relu", input_shape=(4,)),
                                     tf.keras.layers.Dense(1, dtype="float32")])
        model.compile(optimizer=training.FusedAdam(1e-2), loss="mse", jit_compile=True)
        hist = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    assert model.layers[0].kernel.dtype == tf.float32             # float32 master weights, float16 compute
    assert hist.history["loss"][-1] < 0.2 * hist.history["loss"][0], hist.history["loss"]


def _tiny_model():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(2,))])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_ranking_callback_keeps_best_weights_and_stops():
    scores = iter([0.10, 0.20, 0.15, 0.12, 0.30])   # before, epoch 1 (best), 2, 3 -> stop after patience 1
    cb = training.make_ranking_callback(lambda: next(scores), patience=1, verbose=False)
    model = _tiny_model()
    x, y = np.random.default_rng(0).normal(size=(32, 2)), np.ones((32, 1))
    snapshots = []

    class Snap(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([w.copy() for w in self.model.get_weights()])

    hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[cb, Snap()])
    assert len(hist.history["loss"]) == 2           # epoch 2 did not improve: stopped
    assert hist.history["val_ndcg"] == [0.20, 0.15]
    assert cb.history == [0.10, 0.20, 0.15] and cb.best_epoch == 0 and cb.best_index == 1
    assert all(np.allclose(a, b) for a, b in zip(model.get_weights(), snapshots[0]))  # epoch 1's weights


def test_ranking_callback_restores_pretrained_weights_when_training_only_hurts():
    scores = iter([0.5, 0.1, 0.1])
    cb = training.make_ranking_callback(lambda: next(scores), patience=2, verbose=False)
    model = _tiny_model()
    before = [w.copy() for w in model.get_weights()]
    model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0, callbacks=[cb])
    assert cb.best_epoch == -1 and cb.best_index == 0
    assert all(np.allclose(a, b) for a, b in zip(model.get_weights(), before))


def test_epoch_timer_counts_training_not_the_callbacks_after_it():
    import time

    class Slow(tf.keras.callbacks.Callback):       # a validation pass after each epoch: 0.3 s
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.3)

    class SlowBatch(tf.keras.callbacks.Callback):  # training itself: 4 steps of at least 0.05 s
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.05)

    timer = training.make_epoch_timer()
    model = _tiny_model()
    start = time.perf_counter()
    model.fit(np.ones((32, 2)), np.ones((32, 1)), batch_size=8, epochs=3, verbose=0,
              callbacks=[timer, SlowBatch(), Slow()])
    total = time.perf_counter() - start
    assert len(timer.seconds) == 3
    assert all(s >= 0.2 for s in timer.seconds), timer.seconds        # 4 steps of 0.05 s each, at least
    assert sum(timer.seconds) < total - 0.85                           # the three validation sleeps are outside


@pytest.mark.slow
def test_two_tower_trains_under_mirrored_strategy_on_two_logical_cpus():
    code = textwrap.dedent('''
        import json, numpy as np, coldstart
        tf = coldstart.import_tensorflow()
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from transformers import BertConfig, TFBertModel
        from coldstart import training
        from coldstart.models.bert import TwoTower
        tf.keras.utils.set_random_seed(0)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            body = TFBertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=32, max_position_embeddings=16))
            # built, like a from_pretrained model: compile makes Adam's state
            body(input_ids=np.array([[1, 2]], np.int32))
            model = TwoTower(body, temperature=0.1)
            model.compile(optimizer=training.FusedAdam(1e-2))   # the course's optimizer
        n = 128
        item = np.arange(n) % 8
        ctx = np.stack([np.full(n, 1), 10 + item, 20 + item, np.full(n, 2)], axis=1).astype(np.int32)
        its = np.stack([np.full(n, 1), 10 + item, np.full(n, 2)], axis=1).astype(np.int32)
        pairs = {"context_ids": ctx, "item_ids": its, "item": item.astype(np.int32)}
        ds = tf.data.Dataset.from_tensor_slices(pairs).batch(16)
        hist = model.fit(ds, epochs=6, verbose=0)
        var = model.trainable_variables[0]
        local = [v.numpy() for v in strategy.experimental_local_results(var)]
        print(json.dumps({"replicas": strategy.num_replicas_in_sync, "loss": hist.history["loss"],
                          "in_sync": bool(np.allclose(local[0], local[1])), "copies": len(local)}))
    ''')
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["copies"] == 2 and result["in_sync"]
    assert result["loss"][-1] < 0.5 * result["loss"][0], result["loss"]   # it learns (ln 8 = 2.08 at chance)
