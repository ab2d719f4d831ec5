"""Experiments behind docs/design-notes.md, "Open: what the fine-tuned text adds beside the ID part".

Validation protocol only, cpu profile. Run from the repository root with the course's environment
(``COLDSTART_DATA_FILE`` / ``COLDSTART_MODELS_DIR`` as for the tests); results go to ``$OUT`` (default
``/tmp/coldstart-text-tower``). A ``sim-`` prefix runs a mode on the validation split with 7% of the
known products' training rows removed (simulated launches; outputs under ``$OUT/sim``).

    python docs/experiments/text_tower.py base               # TF-IDF and zero-shot, text alone and retriever
    python docs/experiments/text_tower.py train base 8       # the taught tower, vectors after each epoch
    python docs/experiments/text_tower.py hard hard 4        # the taught tower with one hard negative per pair
    PRICE=1 python docs/experiments/text_tower.py bank bank 4   # the rest of the catalog as negatives, from a bank
    PRICE=1 BANK_MASK=1 TEMP=0.2 python docs/experiments/text_tower.py bank bankm-t0.2 4   # partners out of it
    python docs/experiments/text_tower.py logq logq 4        # the same with the logQ (sampling-bias) correction
    GAMMA=200 python docs/experiments/text_tower.py resid resid200 4   # basket pairs + GAMMA x out-of-fold ID part
    TEMP=0.2 python docs/experiments/text_tower.py hard hard-t0.2 4   # any training mode at another temperature
    PRICE=1 python docs/experiments/text_tower.py hard price 4   # item texts with their price band in words
    PROFILE=gpu python docs/experiments/text_tower.py hard gpu-hard 4    # the gpu profile's pairs, batch and rate
    python docs/experiments/text_tower.py assess base-e4 hard-e4
    python docs/experiments/text_tower.py wise base-e4 0.25 0.5 0.75
    python docs/experiments/text_tower.py impute tfidf zero-shot base-e4
    python docs/experiments/text_tower.py three hard-e4 zero-shot   # TF-IDF + w2 x another text, alone and as the text
    python docs/experiments/text_tower.py slots tfidf zero-shot hard-e4   # new-product places: text vs imputed ID score
    python docs/experiments/text_tower.py fusion tfidf zero-shot hard-e4   # each part standardised per user
    PRICE=1 python docs/experiments/text_tower.py csls tfidf price-e4 tfidf-plain zero-shot-plain   # crowding out
    PRICE=1 python docs/experiments/text_tower.py ridge tfidf-plain price-e4 zero-shot-plain   # places by imputed B
    python docs/experiments/text_tower.py perk tfidf zero-shot hard-e4     # w_text and beta per context size
    LAUNCH=0.5 python docs/experiments/text_tower.py hard launch50 4       # half the pairs from launch baskets
    PRICE=1 LAUNCH=0.5 python docs/experiments/text_tower.py hard launchprice 4   # both at once
    python docs/experiments/text_tower.py launches tfidf zero-shot hard-e4 launch50-e4   # real launches' partners
    python docs/experiments/text_tower.py sim-nrecall tfidf zero-shot simtt-e4   # after sim-train simtt 4

An exploration script, not course code: it reads the splits the course caches and writes only to $OUT.
"""

import os
import sys
import time

import impute
import numpy as np
import pandas as pd

import coldstart
from coldstart import evaluation as E
from coldstart import training
from coldstart.data import protocol, tfidf_vectors
from coldstart.models import ItemRegression, TwoTower, encode, load_encoder
from coldstart.models import baselines as B
from coldstart.models.retrieval import Retriever
from coldstart.training import pairs

PROFILE = coldstart.get_profile(os.environ.get("PROFILE", "cpu"))   # PROFILE=gpu: its recipe, on this CPU
coldstart.set_seed(42)
tf = coldstart.import_tensorflow()
valid = protocol.load_or_make("validation")
ID_CHOICE = {"customers": True, "lam": 300.0, "dropout": 0.9}
val_id = ItemRegression.for_split(valid, **ID_CHOICE)
PRICE = os.environ.get("PRICE") == "1"   # every item's text ends with its price band in words (TF-IDF's too)
texts = np.array(valid.texts(price_band=PRICE))
tokenizer, _ = load_encoder(PROFILE.encoder.model_name)
OUT = os.environ.get("OUT", "/tmp/coldstart-text-tower")
TEMP = float(os.environ.get("TEMP", "0.05"))   # the in-batch softmax temperature of every training mode


def vecs(enc):
    return encode(
        list(texts),
        tokenizer,
        enc,
        max_len=PROFILE.encoder.max_len,
        batch_size=PROFILE.encoder.batch_size,
        progress=False,
    )


def load_vectors(name):
    """TF-IDF for ``tfidf``, the plain names' TF-IDF or zero-shot vectors for ``tfidf-plain`` and
    ``zero-shot-plain``, else the saved vectors ``name``.npy in $OUT (or, for a sim- mode, its parent)."""
    if name == "tfidf":
        return tfidf_vectors(list(texts))
    if name == "tfidf-plain":
        return tfidf_vectors(valid.texts())
    if name == "zero-shot-plain":   # the pretrained model on the plain names, whatever PRICE says
        _, pre = load_encoder(PROFILE.encoder.model_name)
        return encode(valid.texts(), tokenizer, pre, max_len=PROFILE.encoder.max_len,
                      batch_size=PROFILE.encoder.batch_size, progress=False)
    path = f"{OUT}/{name}.npy"
    return np.load(path if os.path.exists(path) else f"{OUT}/../{name}.npy")


def ndcg_and_cold(rec):
    t = E.evaluate(rec, valid, segments=["k=1", "k=3", "k=5", "cold-items"], n_boot=0).table
    row = t.query("metric == 'ndcg@10' and segment != 'cold-items'").set_index("segment")["value"].to_dict()
    return {**row, "cold r@20": t.query("metric == 'recall@20' and segment == 'cold-items'")["value"].iloc[0]}


def assess(name, v):
    soft, _ = training.tune_softness(valid, v)
    text = B.TextSimilarity(v, softness=soft)
    row = {f"text {k}": x for k, x in ndcg_and_cold(text).items()}
    recipe, grid = training.tune_retriever(valid, text, val_id)
    ret = Retriever(text, val_id, is_new=valid.new_items, no_text="zero", **recipe)
    row.update({f"ret {k}": x for k, x in ndcg_and_cold(ret).items()})
    row.update(soft=soft, **recipe)
    print(name, {k: (round(x, 4) if isinstance(x, float) else x) for k, x in row.items()}, flush=True)
    return row


def train(
    tag,
    epochs=4,
    n_pairs=PROFILE.fine_tuning.item_pairs,
    lr=PROFILE.training.learning_rate,
    freeze_emb=True,
    temperature=TEMP,
):
    data, steps = pairs.item_pair_dataset(
        val_id.B, texts, tokenizer, n_pairs, epochs, PROFILE.training.batch_size, item_len=PROFILE.encoder.max_len
    )
    _, body = load_encoder(PROFILE.encoder.model_name)
    if freeze_emb:
        body.bert.embeddings.trainable = False
    model = TwoTower(body, temperature=temperature)
    model.compile(optimizer=training.FusedAdam(training.warmup_schedule(lr, max(1, steps * epochs // 10))))
    fit_saving(model, body, tag, data, steps, epochs)


LOGQ = None   # log of each item's share of the positives (and so of the in-batch negatives): logQ correction


class LogQTwoTower(TwoTower):
    """The course's TwoTower (hard negatives and anchors masked as in ``in_batch_softmax_loss``) with the
    sampling-bias correction of Yi et al. (2019): every candidate's logit minus log q(candidate), q its
    share of the training positives, so popular items are not learnt as negatives more often than their
    share warrants (what an unseen product inherits)."""

    def call(self, batch, training=False):
        candidates = tf.concat([batch["item"], batch["neg_item"]], 0)
        return super().call(batch, training) - tf.gather(LOGQ, candidates)[None, :]


def item_logq(n=200_000):
    """log of each item's share of the teacher's positives (a large draw; unseen items get half a count)."""
    _, positives = pairs.teacher_pairs(val_id.B, n, seed=99)
    counts = np.bincount(positives, minlength=len(texts)).astype(np.float64)
    counts[counts == 0] = 0.5
    return tf.constant(np.log(counts / counts.sum()), tf.float32)


def hard_negatives(anchors, seed, pool=30):
    """Per anchor: one of its TF-IDF nearest known items that the ID part does not weight positively."""
    rng = np.random.default_rng(1000 + seed)
    known = np.asarray(val_id.B).any(axis=1)
    out = np.empty(len(anchors), np.int64)
    S = HARD_SIM
    for j, a in enumerate(anchors):
        order = np.argsort(-S[a])[1 : pool + 1]
        ok = [h for h in order if known[h] and val_id.B[a, h] <= 0 and h != a]
        out[j] = rng.choice(ok) if ok else rng.choice(np.flatnonzero(known))
    return out


HARD_SIM = None
LAUNCH = float(os.environ.get("LAUNCH", "0"))   # share of each epoch's pairs drawn from launch baskets
LAUNCH_POOL = None


def launch_pairs(young_days=45, settle_days=60):
    """(anchor, young product) for every basket line of a product within ``young_days`` of its first
    sale, the anchor another item of the same invoice; products first sold in the data's first
    ``settle_days`` are not launches (the data starts then)."""
    rows = valid.train
    first = rows.groupby("item")["date"].min().reindex(valid.item_ids).to_numpy()   # catalog order; NaT: unsold
    launched = first >= (rows["date"].min() + pd.Timedelta(days=settle_days)).to_datetime64()
    young = np.timedelta64(young_days, "D")
    baskets = pairs.invoice_baskets(valid)
    a, p = [], []
    for items, date in zip(baskets["items"], baskets["date"]):
        for y in items[launched[items]]:
            if date.to_datetime64() - first[y] <= young:
                others = items[items != y]
                a.extend(others)
                p.extend([y] * len(others))
    print(f"launch pairs: {len(a)} from {launched.sum()} launched products", flush=True)
    return np.array(a, np.int64), np.array(p, np.int64)


GAMMA = float(os.environ.get("GAMMA", "1000"))   # weight of the ID part's score in the residual tower's logits
RESID_B = None   # (2, n, n): the ID part fitted on each half of the customers, for the other half's pairs
RESID_FOLD = None   # each training invoice's half (0 or 1)


class ResidualTwoTower(TwoTower):
    """The taught tower (hard negatives, masks as in ``in_batch_softmax_loss``) trained as the retriever
    uses it: every logit gets ``GAMMA`` x the ID part's score of (anchor, candidate), the ID part fitted
    on the other half of the customers, so the text learns what the ID part misses, not what it knows."""

    def call(self, batch, training=False):
        candidates = tf.concat([batch["item"], batch["neg_item"]], 0)
        rows = tf.gather_nd(RESID_B, tf.stack([batch["fold"], batch["context_item"]], 1))   # (B, n)
        return super().call(batch, training) + GAMMA * tf.gather(rows, candidates, axis=1)


BANK = None   # tf.Variable (n, d): every catalog item's vector, refreshed during training (no gradient)
BANK_EVERY = int(os.environ.get("BANK_EVERY", "50"))   # steps between refreshes of the bank
BANK_MASK = os.environ.get("BANK_MASK") == "1"   # leave the anchor's positively weighted items out of the bank
BANK_KNOWN = None   # (n,) bool: the products the bank offers as negatives (not the new ones)
BANK_PARTNERS = None   # (n, n): the ID part's B, built only with BANK_MASK


class BankTwoTower(TwoTower):
    """The taught tower (hard negatives) whose softmax also runs over every other known product of the
    catalog, from a bank of their vectors refreshed every ``BANK_EVERY`` steps: the full catalog as
    negatives, as the evaluation ranks it, instead of the batch's 128 candidates. New products are not
    in the bank (a shop does not know them when it trains)."""

    @tf.autograph.experimental.do_not_convert
    def train_step(self, batch):
        n = tf.shape(BANK)[0]
        candidates = tf.concat([batch["item"], batch["neg_item"]], 0)
        taken = tf.reduce_max(tf.one_hot(candidates, n), 0) > 0   # in the batch: scored fresh, not from the bank
        off = (tf.one_hot(batch["context_item"], n) > 0) | taken[None, :] | ~BANK_KNOWN[None, :]
        if BANK_MASK:   # the anchor's other partners in the teacher are not negatives either
            off |= tf.gather(BANK_PARTNERS, batch["context_item"]) > 0
        with tf.GradientTape() as tape:
            users = self.embed(batch["context_ids"], True)
            items = tf.concat([self.embed(batch["item_ids"], True), self.embed(batch["neg_ids"], True)], 0)
            fresh = tf.matmul(users, items, transpose_b=True) / self.temperature
            same = tf.equal(batch["item"][:, None], candidates[None, :])
            same |= tf.equal(batch["context_item"][:, None], candidates[None, :])
            b = tf.shape(fresh)[0]
            fresh = tf.where(same & ~tf.eye(b, 2 * b, dtype=tf.bool), -1e9, fresh)
            bank = tf.where(off, -1e9, tf.matmul(users, BANK, transpose_b=True) / self.temperature)
            logits = tf.concat([fresh, bank], 1)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(b), logits))
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def residual_setup(seed=0):
    """Out-of-fold ID parts and each invoice's fold (customers split in two halves at random)."""
    global RESID_B, RESID_FOLD
    baskets = pairs.invoice_baskets(valid)
    customers = baskets["customer"].unique()
    half = dict(zip(customers, np.random.default_rng(seed).permutation(len(customers)) % 2))
    RESID_FOLD = baskets["customer"].map(half).to_numpy().astype(np.int32)
    parts = []
    for f in (0, 1):   # fold f's pairs are scored by the ID part of the other half's customers
        other = {c for c, h in half.items() if h != f}
        parts.append(ItemRegression.for_split(valid.with_train(valid.train[valid.train["customer"].isin(other)]),
                                              **ID_CHOICE).B)
    RESID_B = tf.constant(np.stack(parts).astype(np.float32))


def basket_pairs(n, seed):
    """(anchor, positive, fold): two distinct items of one training invoice, invoices drawn in proportion
    to their number of items (every basket line equally likely as the positive)."""
    baskets = pairs.invoice_baskets(valid)
    items = baskets["items"].to_numpy()
    sizes = np.array([len(x) for x in items])
    ok = np.flatnonzero(sizes >= 2)
    rng = np.random.default_rng(2000 + seed)
    pick = rng.choice(ok, n, p=sizes[ok] / sizes[ok].sum())
    a = np.empty(n, np.int64)
    p = np.empty(n, np.int64)
    for j, b in enumerate(pick):
        a[j], p[j] = rng.choice(items[b], 2, replace=False)
    return a, p, RESID_FOLD[pick]


def train_hard(tag, epochs=4, n_pairs=PROFILE.fine_tuning.item_pairs, lr=PROFILE.training.learning_rate,
               model_class=TwoTower):
    global HARD_SIM, LAUNCH_POOL
    if LAUNCH:
        LAUNCH_POOL = launch_pairs()
    tv = tfidf_vectors(valid.texts())
    HARD_SIM = np.asarray((tv @ tv.T).todense()) if hasattr(tv, "todense") else tv @ tv.T
    from coldstart.training.pipeline import bucketed_dataset

    feats = {"context_ids": [], "item_ids": [], "neg_ids": [], "item": [], "neg_item": [], "context_item": []}
    residual = model_class is ResidualTwoTower
    if residual and LAUNCH:
        raise SystemExit("resid draws its own pairs from invoices: unset LAUNCH")
    if residual:
        residual_setup()
        feats["fold"] = []
    callbacks = []
    if model_class is BankTwoTower:
        global BANK, BANK_KNOWN, BANK_PARTNERS
        BANK_KNOWN = tf.constant(~valid.new_items)
        if BANK_MASK:
            BANK_PARTNERS = tf.constant(np.asarray(val_id.B, np.float32))
    for epoch in range(epochs):
        if residual:   # real co-purchases: the ID part's own pairs would teach the text nothing it lacks
            anchors, positives, folds = basket_pairs(n_pairs, epoch)
            feats["fold"].append(folds)
        else:
            anchors, positives = pairs.teacher_pairs(val_id.B, n_pairs, seed=epoch)
        if LAUNCH:   # a share of the pairs from young products' baskets (what a launch is bought with)
            n_l = int(LAUNCH * n_pairs)
            pick = np.random.default_rng(500 + epoch).choice(len(LAUNCH_POOL[0]), n_l)
            anchors[:n_l], positives[:n_l] = LAUNCH_POOL[0][pick], LAUNCH_POOL[1][pick]
        negs = hard_negatives(anchors, epoch)

        def tok(idx):
            return tokenizer(list(texts[idx]), truncation=True, max_length=PROFILE.encoder.max_len)["input_ids"]

        feats["context_ids"] += tok(anchors)
        feats["item_ids"] += tok(positives)
        feats["neg_ids"] += tok(negs)
        feats["item"].append(positives.astype(np.int32))
        feats["neg_item"].append(negs.astype(np.int32))
        feats["context_item"].append(anchors.astype(np.int32))
    for k in feats.keys() - {"context_ids", "item_ids", "neg_ids"}:   # the per-pair scalars
        feats[k] = np.concatenate(feats[k])
    data = bucketed_dataset(
        feats, np.array([len(x) for x in feats["context_ids"]]), PROFILE.training.batch_size
    ).repeat()
    steps = n_pairs // PROFILE.training.batch_size
    _, body = load_encoder(PROFILE.encoder.model_name)
    body.bert.embeddings.trainable = False
    model = model_class(body, temperature=TEMP)
    model.compile(optimizer=training.FusedAdam(training.warmup_schedule(lr, max(1, steps * epochs // 10))))
    if model_class is BankTwoTower:
        BANK = tf.Variable(vecs(body), trainable=False)

        def refresh(step, logs=None):
            if step % BANK_EVERY == 0:
                BANK.assign(vecs(body))

        callbacks.append(tf.keras.callbacks.LambdaCallback(on_train_batch_begin=refresh))
    fit_saving(model, body, tag, data, steps, epochs, callbacks)


def fit_saving(model, body, tag, data, steps, epochs, callbacks=()):
    t = [time.perf_counter()]

    def save(e, logs):
        body.save_pretrained(f"{OUT}/{tag}-e{e + 1}")
        np.save(f"{OUT}/{tag}-e{e + 1}.npy", vecs(body))
        print(f"{tag} epoch {e + 1}: loss {logs['loss']:.4f}, {time.perf_counter() - t[0]:.0f} s", flush=True)
        t[0] = time.perf_counter()

    model.fit(
        data,
        steps_per_epoch=steps,
        epochs=epochs,
        verbose=0,
        callbacks=[*callbacks, tf.keras.callbacks.LambdaCallback(on_epoch_end=save)],
    )


class Sum:
    def __init__(self, a, b, w):
        self.a, self.b, self.w = a, b, w

    def score(self, cases):
        return np.nan_to_num(self.a.score(cases), neginf=0.0) + self.w * np.nan_to_num(self.b.score(cases), neginf=0.0)


def assess3(name, v, ws=(0.0, 0.25, 0.5, 1.0, 2.0)):
    """TF-IDF + w2 * text of v, alone and as the retriever's text (ID + w_text * it): does v add to TF-IDF?"""
    tf_v = tfidf_vectors(valid.texts())
    tfidf = B.TextSimilarity(tf_v, softness=training.tune_softness(valid, tf_v)[0])
    other = B.TextSimilarity(v, softness=training.tune_softness(valid, v)[0])
    rows = {}
    for w2 in ws:
        text = Sum(tfidf, other, w2)
        alone = {f"text {k}": x for k, x in ndcg_and_cold(text).items()}
        recipe, grid = training.tune_retriever(valid, text, val_id)
        ret = Retriever(text, val_id, is_new=valid.new_items, no_text="zero", **recipe)
        rows[w2] = {**alone, **ndcg_and_cold(ret), **recipe}
        print(name, w2, {k: round(x, 4) for k, x in rows[w2].items()}, flush=True)
    return rows


def imputed_B(B, V, is_new, m=20, t=0.05, gamma=1.0):
    """New items borrow the rows and columns of B of their m text-nearest known items (softmax weights at t)."""
    import scipy.sparse as sp

    new = np.flatnonzero(is_new)
    known = np.flatnonzero(~is_new & (np.abs(B).sum(axis=1) > 0))
    S = V[new] @ V[known].T
    S = S.toarray() if sp.issparse(S) else np.asarray(S)
    top = np.argpartition(-S, m, axis=1)[:, :m]
    st = np.take_along_axis(S, top, axis=1) / t
    w = np.exp(st - st.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    W = np.zeros((len(new), len(known)), np.float32)
    np.put_along_axis(W, top, w.astype(np.float32), axis=1)
    return impute.borrowed_B(B, W, new, known, gamma)


def assess_imputed(name, v, grid=((10, 0.05, 1.0), (30, 0.05, 1.0), (30, 0.1, 1.0), (30, 0.05, 0.5))):
    soft, _ = training.tune_softness(valid, v)
    text = B.TextSimilarity(v, softness=soft)
    is_new = np.asarray(valid.new_items, bool)
    rows = {}
    for m, t, g in grid:
        idp = ItemRegression.from_matrix(imputed_B(val_id.B, v, is_new, m, t, g))
        row = {f"id {k}": x for k, x in ndcg_and_cold(idp).items()}
        recipe, _ = training.tune_retriever(valid, text, idp)
        ret = Retriever(text, idp, is_new=valid.new_items, no_text="zero", **recipe)
        row.update({f"ret {k}": x for k, x in ndcg_and_cold(ret).items()}, **recipe)
        rows[f"m{m} t{t} g{g}"] = row
        print(name, m, t, g, {k: round(float(x), 4) for k, x in row.items()}, flush=True)
    return rows


HIDDEN = None


def neighbour_recall(v, full_B, hidden, known):
    """For each hidden item: share of its 10 strongest co-purchase neighbours (full-data B, among known
    items) found among its 50 text-nearest known items (the course's ``metrics.neighbour_recall``)."""
    from coldstart.evaluation import metrics as M

    S = v @ v.T
    S = S.toarray() if hasattr(S, "toarray") else np.asarray(S)
    pool = np.zeros(len(S), bool)
    pool[known] = True
    found = M.neighbour_recall(S, np.asarray(full_B), hidden, pool)
    return float(np.nanmean(found)), int(np.isfinite(found).sum())


def simulate_cold(frac=0.07, seed=0):
    """valid with a random frac of its known items' training rows removed: new products for every model."""
    global valid, val_id
    known = valid.catalog.index[valid.catalog["train_customers"].to_numpy() > 0]
    hidden = np.random.default_rng(seed).choice(np.asarray(known), size=int(frac * len(known)), replace=False)
    global HIDDEN, FULL_B
    HIDDEN, FULL_B = hidden, val_id.B
    valid = valid.with_train(valid.train[~valid.train["item"].isin(set(hidden))])
    val_id = ItemRegression.for_split(valid, **ID_CHOICE)
    new = np.asarray(valid.new_items, bool)
    for seg in ["k=1", "k=3", "k=5"]:
        g = valid.segment(seg)
        T = g.targets.tocsr()
        share = np.mean([new[T.indices[T.indptr[i] : T.indptr[i + 1]]].mean() for i in range(T.shape[0])])
        ctx = np.mean([new[np.asarray(list(c), dtype=np.int64)].any() for c in g.context])
        print(f"simulated cold {seg}: share of new targets {share:.3f}, contexts with a new item {ctx:.3f}", flush=True)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    what = sys.argv[1]
    if what.startswith("sim-"):
        simulate_cold(seed=int(os.environ.get("SIM_SEED", "0")))
        what = what[4:]
        OUT = OUT + "/sim" + ("" if os.environ.get("SIM_SEED", "0") == "0" else os.environ["SIM_SEED"])
        os.makedirs(OUT, exist_ok=True)
    if what == "train":
        train(sys.argv[2], epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 4)
    elif what == "base":
        _, pre = load_encoder(PROFILE.encoder.model_name)
        np.save(f"{OUT}/zero-shot.npy", vecs(pre))
        rows = {
            "tfidf": assess("tfidf", tfidf_vectors(valid.texts())),
            "zero-shot": assess("zero-shot", np.load(f"{OUT}/zero-shot.npy")),
        }
        print(ndcg_and_cold(val_id), "id part alone", flush=True)
        pd.DataFrame(rows).T.to_csv(f"{OUT}/base.csv")
    elif what == "assess":
        rows = {n: assess(n, np.load(f"{OUT}/{n}.npy")) for n in sys.argv[2:]}
        pd.DataFrame(rows).T.to_csv(f"{OUT}/assess-{int(time.time())}.csv")
    elif what == "hard":
        train_hard(sys.argv[2], epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 4)
    elif what == "resid":
        train_hard(sys.argv[2], epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 4, model_class=ResidualTwoTower)
    elif what == "bank":
        train_hard(sys.argv[2], epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 4, model_class=BankTwoTower)
    elif what == "logq":
        LOGQ = item_logq()
        train_hard(sys.argv[2], epochs=int(sys.argv[3]) if len(sys.argv) > 3 else 4, model_class=LogQTwoTower)
    elif what == "nrecall":
        pos = {c: i for i, c in enumerate(valid.catalog.index)}
        hidden = np.array(sorted(pos[c] for c in HIDDEN))
        known = np.flatnonzero(~np.asarray(valid.new_items, bool))
        for n in sys.argv[2:]:
            v = load_vectors(n)
            print(
                n,
                "neighbour recall of hidden items (10 in 50):",
                neighbour_recall(v, FULL_B, hidden, known),
                flush=True,
            )
    elif what == "impute":
        for n in sys.argv[2:]:
            pd.DataFrame(assess_imputed(n, load_vectors(n))).T.to_csv(f"{OUT}/impute-{n}.csv")
    elif what == "three":
        for n in sys.argv[2:]:
            pd.DataFrame(assess3(n, np.load(f"{OUT}/{n}.npy"))).T.to_csv(f"{OUT}/three-{n}.csv")
    elif what == "wise":
        tag = sys.argv[2]
        _, pre = load_encoder(PROFILE.encoder.model_name)
        _, ft = load_encoder(f"{OUT}/{tag}", tokenizer=tokenizer)
        w0 = [w.numpy() for w in pre.weights]
        w1 = [w.numpy() for w in ft.weights]
        rows = {}
        for a in [float(x) for x in sys.argv[3:]]:
            pre.set_weights([(1 - a) * x + a * y for x, y in zip(w0, w1)])
            v = vecs(pre)
            np.save(f"{OUT}/{tag}-wise{a}.npy", v)
            rows[a] = assess(f"{tag} wise {a}", v)
        pd.DataFrame(rows).T.to_csv(f"{OUT}/wise-{tag}.csv")


class AdaptiveRetriever:
    """ID + (w0 + w1 * share of the context the ID part does not know) * text + beta * [new]."""

    def __init__(self, text, id_part, is_new, w0, w1, beta):
        self.text, self.id_part, self.w0, self.w1, self.beta = text, id_part, w0, w1, beta
        self.is_new = np.asarray(is_new, np.float32)

    def score(self, cases):
        text = np.nan_to_num(self.text.score(cases), neginf=0.0)
        share = np.array([self.is_new[np.asarray(list(c), dtype=np.int64)].mean() for c in cases.context], np.float32)
        w = (self.w0 + self.w1 * share)[:, None]
        return (self.id_part.score(cases) + w * text + self.beta * self.is_new[None, :]).astype(np.float32)


def blind_users(split):
    """Per segment k=1,3,5: mask of users whose context holds an item the ID part does not know."""
    new = np.asarray(split.new_items, bool)
    return {
        s: np.array([new[np.asarray(list(c), dtype=np.int64)].any() for c in split.segment(s).context])
        for s in ["k=1", "k=3", "k=5"]
    }


def assess_adaptive(
    name, v, w0s=(0.0, 0.01, 0.02, 0.05), w1s=(0.0, 0.05, 0.1, 0.2, 0.5, 1.0), betas=(0.0, 0.001, 0.003)
):
    soft, _ = training.tune_softness(valid, v)
    text = B.TextSimilarity(v, softness=soft)
    is_new = np.asarray(valid.new_items, bool)
    best = (-1, None)
    for w0 in w0s:
        for w1 in w1s:
            for b in betas:
                m = E.mean_ndcg(AdaptiveRetriever(text, val_id, is_new, w0, w1, b), valid)
                if m > best[0]:
                    best = (m, (w0, w1, b))
    w0, w1, b = best[1]
    row = ndcg_and_cold(AdaptiveRetriever(text, val_id, is_new, w0, w1, b))
    # text alone and the retriever on the users whose context the ID part is partly blind to
    blind = blind_users(valid)
    per_user = {}
    for label, rec in (("text", text), ("ret", AdaptiveRetriever(text, val_id, is_new, w0, w1, b))):
        for s, mask in blind.items():
            seg = valid.segment(s)
            scores = rec.score(seg.batch()) if hasattr(seg, "batch") else None
            per_user[f"{label} blind {s}"] = _ndcg_rows(scores, seg)[mask].mean() if scores is not None else np.nan
    print(name, {k: round(float(x), 4) for k, x in {**row, **per_user}.items()}, "w0 w1 beta", best[1], flush=True)
    return {**row, **per_user, "w0": w0, "w1": w1, "beta": b}


def _ndcg_rows(scores, seg):
    """Per-user NDCG@10 of one segment, as the harness computes it."""
    from coldstart.evaluation import metrics as M

    top = M.topk_items(scores, 10, exclude=seg.exclude(scores.shape[1]))
    return M.ranking_metrics(top, seg.targets, ks=(10,))["ndcg@10"]


if __name__ == "__main__" and what == "adaptive":
    for n in sys.argv[2:]:
        v = load_vectors(n)
        assess_adaptive(n, v)


def assess_slots(name, v, imputations=((10, 0.1), (30, 0.1))):
    """Cold-item Recall@20 of the retriever with ten new-product places, filled by the text's nearest new
    products (notebook 03's policy) or by the ID part's score of each new product imputed through its
    m text-nearest known products (softmax at t): the same places for every text model."""
    from coldstart.models import NewProductSlots

    soft, _ = training.tune_softness(valid, v)
    text = B.TextSimilarity(v, softness=soft)
    recipe, _ = training.tune_retriever(valid, text, val_id)
    ret = Retriever(text, val_id, is_new=valid.new_items, no_text="zero", **recipe)
    is_new = np.asarray(valid.new_items, bool)
    rows = {"text places": ndcg_and_cold(NewProductSlots(ret, text, is_new))}
    for m, t in imputations:
        idp = ItemRegression.from_matrix(imputed_B(val_id.B, v, is_new, m, t))
        rows[f"imputed m{m} t{t}"] = ndcg_and_cold(NewProductSlots(ret, idp, is_new))
    for k, row in rows.items():
        print(name, k, {a: round(float(x), 4) for a, x in row.items()}, flush=True)
    return rows


if __name__ == "__main__" and what == "slots":
    for n in sys.argv[2:]:
        assess_slots(n, load_vectors(n))


def _z(x):
    """Each row standardised over the catalog (mean 0, standard deviation 1)."""
    x = np.nan_to_num(np.asarray(x, np.float32), neginf=0.0)
    return (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-9)


class ZFusion:
    """z(ID) + w * z(text) + beta * [new]: each part standardised per user before the blend."""

    def __init__(self, text, id_part, is_new, w, beta):
        self.text, self.id_part, self.w, self.beta = text, id_part, w, beta
        self.is_new = np.asarray(is_new, np.float32)

    def score(self, cases):
        return (_z(self.id_part.score(cases)) + self.w * _z(self.text.score(cases))
                + self.beta * self.is_new[None, :]).astype(np.float32)


def assess_fusion(name, v, ws=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0), betas=(0.0, 0.5, 1.0, 2.0, 4.0)):
    soft, _ = training.tune_softness(valid, v)
    text = B.TextSimilarity(v, softness=soft)
    is_new = np.asarray(valid.new_items, bool)
    grid = {(w, b): E.mean_ndcg(ZFusion(text, val_id, is_new, w, b), valid) for w in ws for b in betas}
    (w, b), best = max(grid.items(), key=lambda kv: kv[1])
    row = ndcg_and_cold(ZFusion(text, val_id, is_new, w, b))
    print(name, {k: round(float(x), 4) for k, x in row.items()}, "w beta", (w, b), "mean", round(best, 4), flush=True)
    return row


if __name__ == "__main__" and what == "fusion":
    for n in sys.argv[2:]:
        assess_fusion(n, load_vectors(n))


def assess_per_k(name, v, weights=(0.0, 0.01, 0.02, 0.05, 0.1, 0.2), betas=(0.0, 0.001, 0.003, 0.01)):
    """The retriever's w_text and beta chosen for each context size separately (the recipe knows k)."""
    soft, _ = training.tune_softness(valid, v)
    text = B.TextSimilarity(v, softness=soft)
    rows = []
    for w in weights:
        for b in betas:
            t = E.evaluate(Retriever(text, val_id, w_text=w, beta=b, is_new=valid.new_items, no_text="zero"),
                           valid, segments=["k=1", "k=3", "k=5"], n_boot=0).table
            rows.append({"w": w, "beta": b, **t.query("metric == 'ndcg@10'").set_index("segment")["value"].to_dict()})
    grid = pd.DataFrame(rows)
    best = {s: grid.loc[grid[s].idxmax(), ["w", "beta", s]].to_dict() for s in ["k=1", "k=3", "k=5"]}
    print(name, {s: (b["w"], b["beta"], round(b[s], 4)) for s, b in best.items()}, flush=True)
    return best


if __name__ == "__main__" and what == "perk":
    for n in sys.argv[2:]:
        assess_per_k(n, load_vectors(n))


def launch_neighbours(names, min_invoices=(3, 5, 10, 20)):
    """Real launches of the validation window (July-August): the share of each new product's strongest
    co-purchase partners in that window (known products: among its 50 text-nearest; new: 20), as in
    notebook 03's analysis of the test season."""
    from coldstart.data import load_clean
    from coldstart.evaluation import metrics as M

    season = load_clean(verbose=False)[0].query("date >= @valid.cutoff and date < @valid.end")
    baskets = B.basket_matrix(valid, rows=season)
    partners = B.cooccurrence_cosine(baskets)
    is_new = np.asarray(valid.new_items, bool)
    sold = np.asarray(baskets.sum(axis=0)).ravel()
    cos = {}
    for n in names:
        v = load_vectors(n)
        c = v @ v.T
        cos[n] = c.toarray() if hasattr(c, "toarray") else np.asarray(c)
    for m in min_invoices:
        launches = np.flatnonzero(is_new & (sold >= m))
        row = {
            n: (
                round(float(np.nanmean(M.neighbour_recall(c, partners, launches, ~is_new, n_similar=50))), 3),
                round(float(np.nanmean(M.neighbour_recall(c, partners, launches, is_new, n_similar=20))), 3),
            )
            for n, c in cos.items()
        }
        print(f"launches sold in >= {m} invoices: {len(launches)}; (known, new) partners found:", row, flush=True)


if __name__ == "__main__" and what == "launches":
    launch_neighbours(sys.argv[2:])


class Debiased:
    """A text scorer minus ``lam`` x each item's hubness: the mean cosine of the item to its ``k`` nearest
    known products (CSLS, Conneau et al. 2018). A vector space where trained products crowd together
    ranks them above an untrained new product by position alone; this takes the crowding out."""

    def __init__(self, text, v, lam, k=10):
        known = np.flatnonzero(~valid.new_items)
        sims = np.asarray(v @ v[known].T.toarray() if hasattr(v, "toarray") else v @ v[known].T)
        sims[known, np.arange(len(known))] = -np.inf   # an item is not its own neighbour
        self.hub = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
        self.text, self.lam = text, lam

    def score(self, cases):
        return self.text.score(cases) - self.lam * self.hub[None, :]


def assess_csls(name, v, lams=(0.0, 0.1, 0.25, 0.5, 1.0)):
    """Text alone with the hubness correction at each ``lam``: NDCG@10 and cold-item Recall@20."""
    scorer = Debiased(B.TextSimilarity(v, softness=training.tune_softness(valid, v)[0]), v, 0.0)
    hub = scorer.hub
    for lam in lams:
        scorer.lam = lam
        row = ndcg_and_cold(scorer)
        print(name, lam, {k: round(x, 4) for k, x in row.items()},
              f"hub new {hub[valid.new_items].mean():.3f} known {hub[~valid.new_items].mean():.3f}", flush=True)


if __name__ == "__main__" and what == "csls":
    for n in sys.argv[2:]:
        assess_csls(n, load_vectors(n))


def assess_ridge(name, v, alphas=(0.1, 1.0, 10.0, 100.0, 1000.0, 1e4, 1e6)):
    """Cold-item Recall@20 with notebook 03's ten new-product places filled by the ID part's score of each
    new product, its weights predicted from its text by ridge regression (``impute.ridge_B``) at each alpha."""
    from coldstart.models import NewProductSlots

    text = B.TextSimilarity(v, softness=training.tune_softness(valid, v)[0])
    recipe, _ = training.tune_retriever(valid, text, val_id)
    ret = Retriever(text, val_id, is_new=valid.new_items, no_text="zero", **recipe)
    is_new = np.asarray(valid.new_items, bool)
    for a in alphas:
        idp = ItemRegression.from_matrix(impute.ridge_B(val_id.B, v, is_new, a))
        row = ndcg_and_cold(NewProductSlots(ret, idp, is_new))
        print(name, "ridge", a, {k: round(float(x), 4) for k, x in row.items()}, flush=True)


if __name__ == "__main__" and what == "ridge":
    for n in sys.argv[2:]:
        assess_ridge(n, load_vectors(n))
