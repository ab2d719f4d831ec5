"""Latency of the serving recommender (notebook 07, ``make benchmark ONLY=serving``).

* :func:`measure_latency` -- wall-clock milliseconds of a click update and of a free-text query of
  :class:`~coldstart.serving.recommender.Recommender` on real sessions, and its batch throughput.
* :func:`crossencoder_full_catalog` -- what the alternative costs: scoring the whole catalog for one
  user with notebook 03's cross-encoder, brute force.
"""

from __future__ import annotations

import time

import numpy as np

from .._internal.tf import import_tensorflow, quiet_transformers
from ..evaluation.metrics import topk_items
from ..models.encoders import load_tokenizer, padded_batches, resolve_model, safe_load_options
from ..serving.recommender import Recommender


def fresh_crossencoder(model_name):
    """Notebook 03's cross-encoder on the pretrained ``model_name`` with a fresh one-logit head."""
    from transformers import TFAutoModelForSequenceClassification

    from ..models.bert import CrossEncoder  # a Keras class: importing it starts TensorFlow

    quiet_transformers()
    where = resolve_model(model_name)
    return CrossEncoder(TFAutoModelForSequenceClassification.from_pretrained(where, num_labels=1,
                                                                             **safe_load_options(where)))


def measure_latency(rec: Recommender, split, n_users: int = 200, n_queries: int = 200, k: int = 10,
                    warmup: int = 20, seed: int = 0, batch_users: int = 1000, batch_size: int = 250) -> dict:
    """Time the serving paths on real sessions of the split's new users (milliseconds, wall clock).

    * ``click``: a click update -- :meth:`Recommender.recommend` with the clicks so far (1 to 5 items
      of a new user's first invoice), reasons and DataFrame included; no encoder call.
    * ``query``: a free-text query (2-4 words of an item's text, so every call is a new text) --
      one encoder call plus the same scoring.
    * ``batch_users_per_s``: :meth:`Recommender.score` plus the top ``k`` for ``batch_users`` users
      (k=3 contexts) in batches of ``batch_size``.

    Each path is warmed up ``warmup`` times first (tracing, caches). Returns the raw times too.
    """
    rng = np.random.default_rng(seed)
    seg = split.segment("k=5").sample(n_users, seed=seed)
    sessions = [[split.item_ids[i] for i in c] for c in seg.context]
    countries = list(seg.country)
    texts = split.texts()
    queries = []
    for i in rng.choice(len(texts), size=n_queries + warmup, replace=False):
        words = str(texts[i]).lower().split()
        n = int(rng.integers(2, 5))
        queries.append(" ".join(words[:n]) or "gift")

    for s in sessions[:warmup]:
        rec.recommend(s[:2], country=countries[0], k=k)
    click_ms = []
    for s, country in zip(sessions, countries):
        for j in range(1, len(s) + 1):
            start = time.perf_counter()
            rec.recommend(s[:j], country=country, k=k)
            click_ms.append(1000 * (time.perf_counter() - start))

    for q in queries[:warmup]:
        rec.recommend(query_text=q, k=k)
    query_ms = []
    for q in queries[warmup:]:
        start = time.perf_counter()
        rec.recommend(query_text=q, k=k)
        query_ms.append(1000 * (time.perf_counter() - start))

    batch = split.segment("k=3").sample(batch_users, seed=seed).batch()

    def run_batches():
        for lo in range(0, len(batch), batch_size):
            sub = batch.subset(np.arange(lo, min(lo + batch_size, len(batch))))
            topk_items(rec.score(sub), k, exclude=sub.exclude(rec.n_items))

    run_batches()  # warm-up
    rates = []
    for _ in range(3):
        start = time.perf_counter()
        run_batches()
        rates.append(len(batch) / (time.perf_counter() - start))
    click_ms, query_ms = np.array(click_ms), np.array(query_ms)
    return {
        "click_ms": click_ms, "query_ms": query_ms,
        "click_p50_ms": float(np.percentile(click_ms, 50)), "click_p95_ms": float(np.percentile(click_ms, 95)),
        "query_p50_ms": float(np.percentile(query_ms, 50)), "query_p95_ms": float(np.percentile(query_ms, 95)),
        "batch_users_per_s": float(np.median(rates)),
        "n_clicks": int(len(click_ms)), "n_queries": int(len(query_ms)), "batch_users": int(len(batch)),
    }


def crossencoder_full_catalog(model_name, context_text: str, item_texts, batch_size: int = 128,
                              max_len: int = 48) -> dict:
    """Milliseconds to score every catalog item for one user with a cross-encoder (brute force).

    The model is :class:`coldstart.models.bert.CrossEncoder` on the profile's encoder with a fresh
    one-logit head (the weights do not change the time). Pairs are tokenised as notebook 03 does
    (``[CLS] context [SEP] item [SEP]``, at most ``max_len`` tokens), sorted by length and padded per
    batch; the forward pass is compiled once for any shape and warmed up on two batches first.
    Tokenisation is included in the time.
    """
    tf = import_tensorflow()
    tokenizer = load_tokenizer(model_name)
    cross = fresh_crossencoder(model_name)
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec])
    def probabilities(ids, tts):
        return tf.sigmoid(cross({"input_ids": ids, "token_type_ids": tts}))

    def score_all(texts):
        enc = tokenizer([context_text] * len(texts), list(texts), truncation="only_first", max_length=max_len)
        ids, tts = enc["input_ids"], enc["token_type_ids"]
        lengths = np.array([len(x) for x in ids])
        out = np.zeros(len(texts), np.float32)
        for idx, batch_ids, _ in padded_batches(ids, batch_size, np.argsort(lengths)):
            batch_tt = np.zeros_like(batch_ids)
            for row, i in enumerate(idx):
                batch_tt[row, : len(tts[i])] = tts[i]
            out[idx] = probabilities(tf.constant(batch_ids, tf.int32), tf.constant(batch_tt, tf.int32)).numpy()
        return out

    score_all(list(item_texts)[: 2 * batch_size])  # warm-up: tracing
    start = time.perf_counter()
    probs = score_all(item_texts)
    ms = 1000 * (time.perf_counter() - start)
    return {"crossencoder_full_catalog_ms": round(ms, 1), "crossencoder_items": int(len(probs)),
            "crossencoder_pairs_per_s": round(len(probs) / (ms / 1000), 1)}
