"""A taught tower of docs/experiments/text_tower.py, retrained on the test split and compared once on
the test users (docs/design-notes.md).

Notebook 03's path with a profile's pairs, batch, rate and token length (``PROFILE``, default ``gpu``,
run on this CPU) and optionally item texts ending with their price band (``PRICE=1``; the baselines keep
their plain texts): the epochs are chosen on validation from the vectors ``TAG``-e1..4 that text_tower.py
saved in $OUT, the tower is retrained on the test split's ID part with hard negatives, and text alone,
the retriever and the ten new-product places are compared with TF-IDF and zero-shot text, every choice
made on validation.

    OUT=/tmp/coldstart-text-tower python docs/experiments/tower_on_test.py                  # TAG=gpu-hard
    OUT=... PROFILE=cpu PRICE=1 TAG=price python docs/experiments/tower_on_test.py
    OUT=... PROFILE=cpu PRICE=1 TAG=price RIDGE=tfidf:1000,tower:10000 python docs/experiments/tower_on_test.py

An exploration script, not course code: it reads the splits the course caches and writes only to $OUT.
"""

import os
import time

import impute
import numpy as np
import pandas as pd

import coldstart
from coldstart import evaluation as E
from coldstart import training
from coldstart.data import protocol, tfidf_vectors
from coldstart.models import NewProductSlots, TwoTower, encode, load_encoder
from coldstart.models.baselines import ItemRegression
from coldstart.training import pairs

PROFILE = coldstart.get_profile(os.environ.get("PROFILE", "gpu"))
TAG = os.environ.get("TAG", "gpu-hard")
PRICE = os.environ.get("PRICE") == "1"
coldstart.set_seed(42)
tf = coldstart.import_tensorflow()
OUT = os.environ.get("OUT", "/tmp/coldstart-text-tower")
ID_CHOICE = {"customers": True, "lam": 300.0, "dropout": 0.9}
split, valid = protocol.load_or_make("test"), protocol.load_or_make("validation")
tokenizer, pretrained = load_encoder(PROFILE.encoder.model_name)


def priced(split_):
    """The split's item texts, each ending with its price band in words when PRICE (as text_tower.py)."""
    return split_.texts(price_band=PRICE)


def vectors(encoder, texts):
    return encode(list(texts), tokenizer, encoder, max_len=PROFILE.encoder.max_len, batch_size=128, progress=False)


curve = {e: training.tune_softness(valid, np.load(f"{OUT}/{TAG}-e{e}.npy"))[1].max() for e in range(1, 5)}
best = max(curve, key=curve.get)
print("validation NDCG@10 by epoch:", {e: round(v, 4) for e, v in curve.items()}, "kept:", best, flush=True)

test_id = ItemRegression.for_split(split, **ID_CHOICE)
words = tfidf_vectors(split.texts())
data, steps = pairs.item_pair_dataset(test_id.B, np.array(priced(split)), tokenizer, PROFILE.fine_tuning.item_pairs,
                                      best, PROFILE.training.batch_size, item_len=PROFILE.encoder.max_len,
                                      negatives_from=(words @ words.T).toarray())
_, body = load_encoder(PROFILE.encoder.model_name)
body.bert.embeddings.trainable = False
model = TwoTower(body, temperature=0.05)
model.compile(optimizer=training.FusedAdam(
    training.warmup_schedule(PROFILE.training.learning_rate, max(1, steps * best // 10))))
start = time.perf_counter()
model.fit(data, steps_per_epoch=steps, epochs=best, verbose=0)
print(f"retrained on the test split: {best} epochs of {steps} steps, {(time.perf_counter() - start) / 60:.1f} min",
      flush=True)
test_tower = vectors(model.encoder, priced(split))
np.save(f"{OUT}/{TAG}-test-tower.npy", test_tower)

val_of = {"tfidf": tfidf_vectors(valid.texts()), "zero-shot-lm": vectors(pretrained, valid.texts()),
          "tower": np.load(f"{OUT}/{TAG}-e{best}.npy")}
test_of = {"tfidf": words, "zero-shot-lm": vectors(pretrained, split.texts()), "tower": test_tower}
# RIDGE="tfidf:1000,zero-shot-lm:100,tower:10000": the places also filled by the ID part's score of each new
# product imputed from its text (impute.ridge_B), each text model at the alpha text_tower.py ridge chose for it
RIDGE = dict((n, float(a)) for n, a in (x.split(":") for x in os.environ.get("RIDGE", "").split(",") if x))
results = {}
for name in val_of:
    ret, text, choice = training.fair_text_retriever(valid, split, val_of[name], test_of[name], ID_CHOICE, name)
    print(name, choice, flush=True)
    runs = [(name, text), (f"id+{name}", ret),
            (f"id+{name}+places", NewProductSlots(ret, text, split.new_items, first=10, n=10))]
    if name in RIDGE:
        imputed = ItemRegression.from_matrix(impute.ridge_B(test_id.B, test_of[name], split.new_items, RIDGE[name]))
        runs.append((f"id+{name}+ridge-places", NewProductSlots(ret, imputed, split.new_items, first=10, n=10)))
    for label, rec in runs:
        results[label] = E.evaluate(rec, split, method=label, n_boot=1000)


def row(r):
    t = r.table.set_index(["metric", "segment"])["value"]
    return {"k=1": t["ndcg@10", "k=1"], "k=3": t["ndcg@10", "k=3"], "k=5": t["ndcg@10", "k=5"],
            "cold recall@20": t["recall@20", "cold-items"]}


print(pd.DataFrame({n: row(r) for n, r in results.items()}).T.round(4).to_string(), flush=True)
comparisons = [("tower", "tfidf", "ndcg@10"), ("tower", "zero-shot-lm", "ndcg@10"),
               ("id+tower", "id+tfidf", "ndcg@10"), ("id+tower", "id+zero-shot-lm", "ndcg@10"),
               ("tower", "tfidf", "recall@20"), ("id+tower+places", "id+tfidf+places", "recall@20")]
comparisons += [(f"id+tower+{p}", f"id+tfidf+{q}", "recall@20") for p, q in
                [("ridge-places", "ridge-places"), ("ridge-places", "places"), ("places", "ridge-places")]
                if f"id+tower+{p}" in results and f"id+tfidf+{q}" in results]
for a, b, metric in comparisons:
    c = E.compare(results[a], results[b], metric=metric, n_boot=1000)
    segs = ["cold-items"] if metric == "recall@20" else ["k=1", "k=3", "k=5"]
    print(f"{a} - {b} ({metric}):")
    print(c[c["segment"].isin(segs)][["segment", "a", "b", "diff", "rel_diff", "ci_low", "ci_high"]]
          .round(4).to_string(index=False), flush=True)
