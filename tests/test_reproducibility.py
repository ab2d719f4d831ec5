"""Reproducibility on CPU: the same seed gives the same numbers (slow: about 3 minutes).

* Two ``smoke`` runs of notebook 02 through the course runner (``python -m coldstart.tools.course``), each
  writing to its own ``COLDSTART_RUNS`` folder, give identical leaderboards, value for value, and
  each row is traced to its run in ``leaderboard.runs.json``.
* :func:`coldstart.set_seed` makes TensorFlow training repeatable: two fresh processes fine-tune the
  same small BERT two-tower model with dropout and a shuffled dataset and end with bit-identical
  losses and weights; a third with another seed ends elsewhere (so the comparison can fail).

Notebook 03 twice would take about 6 minutes in ``smoke`` on 2 cores, over this test's budget;
the second test covers what 03 adds (seeded TensorFlow training) in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import real_data_file

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               COLDSTART_QUIET_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="3")
    env.update(extra)
    return env


def test_set_seed_seeds_python_numpy_tensorflow_and_op_determinism():
    import random

    import numpy as np
    from tensorflow.python.framework import config as tf_config

    import coldstart

    tf = coldstart.import_tensorflow()
    draws = []
    for _ in range(2):
        coldstart.set_seed(123)
        draws.append((random.random(), np.random.rand(), float(tf.random.uniform(()))))
    assert draws[0] == draws[1]
    coldstart.set_seed(124)
    assert (random.random(), np.random.rand(), float(tf.random.uniform(()))) != draws[0]
    assert tf_config.is_op_determinism_enabled()


@pytest.mark.slow
def test_two_smoke_runs_of_notebook_02_give_identical_leaderboards(tmp_path):
    data_file = real_data_file()
    if not data_file.is_file():
        pytest.skip(f"the UCI table is not at {data_file} (set COLDSTART_DATA_FILE)")
    boards, runs = [], []
    for name in ("run-a", "run-b"):
        out = tmp_path / name
        proc = subprocess.run(
            [sys.executable, "-m", "coldstart.tools.course", "--profile", "smoke", "--only", "02"],
            cwd=ROOT, capture_output=True, text=True, timeout=1800,
            env=_env(COLDSTART_RUNS=str(out), COLDSTART_HOME=str(ROOT), COLDSTART_DATA_FILE=str(data_file),
                     COLDSTART_DATA_DIR=str(tmp_path / "data")),  # the split cache: built by a, read by b
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert (out / "notebooks" / "02_baselines.ipynb").is_file()  # the runner honours COLDSTART_RUNS
        boards.append(pd.read_csv(out / "leaderboard.csv"))
        runs.append(json.loads((out / "leaderboard.runs.json").read_text()))
    a, b = boards
    assert len(a) > 50 and set(a["profile"]) == {"smoke"}
    assert {"popularity", "item-knn", "tfidf", "zero-shot-lm", "hybrid"} <= set(a["method"])
    pd.testing.assert_frame_equal(a, b, check_exact=True)  # every value and interval, to the last digit
    for board, info in zip(boards, runs):
        for method, profile, protocol in board[["method", "profile", "protocol"]].drop_duplicates().to_numpy():
            entry = info[f"{method} | {profile} | {protocol}"]
            assert entry["date"] and entry["versions"]["tensorflow"] and entry["machine"]


TRAIN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import coldstart
    from coldstart.models import bert as models
    tf = coldstart.import_tensorflow()
    coldstart.set_seed(int(sys.argv[1]))
    from transformers import BertConfig, TFBertModel
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, hidden_dropout_prob=0.2)
    model = models.TwoTower(TFBertModel(cfg), temperature=0.1)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)  # the same data in every run; the seed changes init, dropout, shuffle
    ctx = rng.integers(4, 50, size=(64, 6)).astype(np.int32)
    item = rng.integers(0, 40, size=64).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices({"context_ids": ctx, "item_ids": ctx[:, ::-1].copy(), "item": item})
    ds = ds.shuffle(64).batch(8)
    hist = model.fit(ds, epochs=2, verbose=0)
    weights = [w.numpy() for w in model.trainable_weights]
    print("RESULT " + json.dumps({"loss": [float(x).hex() for x in hist.history["loss"]],
                                  "checksum": float(sum(np.abs(w).sum(dtype=np.float64) for w in weights)).hex()}))
""")


def _train(seed: int, tmp_path: Path) -> dict:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    proc = subprocess.run([sys.executable, str(script), str(seed)], capture_output=True, text=True,
                          timeout=900, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))


@pytest.mark.slow
def test_set_seed_makes_tensorflow_training_repeatable(tmp_path):
    first, second, other = _train(42, tmp_path), _train(42, tmp_path), _train(7, tmp_path)
    assert first == second  # bit for bit: losses of both epochs and the weights
    assert other["checksum"] != first["checksum"] and other["loss"] != first["loss"]
