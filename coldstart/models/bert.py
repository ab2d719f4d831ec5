"""The models notebook 03 teaches, for later chapters to import.

Notebook 03 shows each class in its own cell, verbatim (a test keeps the two identical), so what a
reader copies from the chapter is what the course runs.

* :class:`CrossEncoder` -- the CTR formulation: BERT reads "[context] [SEP] [candidate]" and
  outputs one logit; trained with binary cross-entropy on bought vs. sampled items.
* :class:`TwoTower` -- a retriever: one shared BERT encoder with mean pooling embeds the context
  text and each item text; trained with an in-batch softmax (temperature) so the context lands near
  the item bought. Items are embedded once into an index; a user costs one encoder call.
* :class:`ItemRegression` -- the ID part: a ridge regression from a basket's items to the basket's
  other items (closed form, known as EASE; with ``dropout``, DLAE). It knows only items bought
  before the cutoff.
* :class:`TextIDRecommender` -- the course's retriever: ID part + weight x text similarity + a bias
  for new products, weights chosen on the validation split.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp

from .._internal.tf import import_tensorflow
from .encoders import encode, mean_pool

tf = import_tensorflow()


class CrossEncoder(tf.keras.Model):
    """P(buy | context, candidate) = sigmoid(one logit of BERT over the text pair)."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier  # TFAutoModelForSequenceClassification with num_labels=1

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if self.classifier.built:  # Adam's state now: made inside the first step, it would cost a second trace
            self.optimizer.build(self.trainable_variables)

    @tf.autograph.experimental.do_not_convert  # plain graph code: AutoGraph's rewrite of BERT only costs seconds
    def call(self, inputs, training=False):
        ids = inputs["input_ids"]
        out = self.classifier(
            input_ids=ids,
            attention_mask=tf.cast(ids != 0, tf.int32),  # 0 is [PAD] for BERT vocabularies
            token_type_ids=inputs["token_type_ids"],
            training=training,
        )
        return tf.cast(out.logits[:, 0], tf.float32)  # one logit per pair, shape (batch,)


class TwoTower(tf.keras.Model):
    """Shared-encoder two-tower retriever trained with an in-batch softmax."""

    def __init__(self, encoder, temperature: float = 0.05):
        super().__init__()
        self.encoder = encoder  # TFAutoModel: the BERT body, no head
        self.temperature = temperature
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if self.encoder.built:  # Adam's state now: made inside the first step, it would cost a second trace
            self.optimizer.build(self.trainable_variables)

    def embed(self, ids, training=False):
        mask = tf.cast(ids != 0, tf.int32)
        hidden = self.encoder(input_ids=ids, attention_mask=mask, training=training).last_hidden_state
        return tf.math.l2_normalize(tf.cast(mean_pool(hidden, mask), tf.float32), axis=-1)

    def call(self, batch, training=False):
        users = self.embed(batch["context_ids"], training)   # (B, d)
        items = self.embed(batch["item_ids"], training)      # (B, d): row i is user i's positive
        return tf.matmul(users, items, transpose_b=True) / self.temperature  # (B, B) logits

    @tf.autograph.experimental.do_not_convert  # plain graph code: AutoGraph's rewrite of BERT only costs seconds
    def train_step(self, batch):
        with tf.GradientTape() as tape:
            logits = self(batch, training=True)
            n = tf.shape(logits)[0]
            # another user's positive that is the *same item* is not a negative: mask it out
            same = tf.equal(batch["item"][:, None], batch["item"][None, :])
            logits = tf.where(same & ~tf.eye(n, dtype=tf.bool), -1e9, logits)
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(tf.range(n), logits, from_logits=True))
            scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync  # gradients are summed over replicas
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]


class ItemRegression:
    """The ID part: B = argmin ||X - X B||^2 + ||Lambda^(1/2) B||^2 with diag(B) = 0 (EASE, Steck 2019).

    ``X`` is the (basket x item) matrix of training baskets. Closed form: P = (X^T X + Lambda)^-1,
    B = -P / diag(P), diag(B) = 0. ``Lambda = lam I`` is EASE. ``dropout = p > 0`` adds
    ``p / (1 - p) x diag(X^T X)``: the penalty of a denoising autoencoder that drops each input item
    with probability ``p`` (DLAE, Steck 2020), so a popular item's weights shrink more and one
    basket's co-purchases count less. A context's scores are the *sum* of its items' rows of B
    (``x B`` for the context's 0/1 row ``x``: the model's own prediction; averaging instead flattens
    the scores of longer contexts and measured worse at k=3 and 5). Items never bought before the
    cutoff get a zero column: the ID part cannot recommend them.
    """

    def __init__(self, baskets: sp.csr_matrix, lam: float = 500.0, dropout: float = 0.0):
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        gram = (baskets.T @ baskets).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += lam + dropout / (1.0 - dropout) * np.diag(gram)
        P = np.linalg.inv(gram)
        B = -P / np.diag(P)[None, :]
        np.fill_diagonal(B, 0.0)
        self.B = B.astype(np.float32)
        self.n_items = baskets.shape[1]

    def score(self, batch) -> np.ndarray:
        return np.asarray(batch.context_matrix(self.n_items, weights="uniform") @ self.B)


def context_text(texts, positions, sep: str = " ; ") -> str:
    """The user's context written as text: the clicked items' texts in click order."""
    return sep.join(texts[i] for i in positions)


class TextIDRecommender:
    """score = ID part + ``w_text`` x cosine(context text, item text) + ``beta`` x [item is new].

    ``item_vectors`` are the (fine-tuned) encoder's L2-normalised item embeddings; the context is
    encoded as one text (:func:`context_text`). ``is_new`` marks items with no training purchases:
    they get no ID score, so without ``beta`` they could only win on text. Set ``id_part=None`` for a
    text-only retriever.
    """

    def __init__(self, tokenizer, encoder, texts, item_vectors, id_part=None, w_text: float = 1.0,
                 beta: float = 0.0, is_new: Optional[np.ndarray] = None, max_len: int = 64,
                 batch_size: int = 128, name: str = "two-tower"):
        self.tokenizer, self.encoder, self.texts = tokenizer, encoder, list(texts)
        self.item_vectors, self.id_part, self.w_text, self.beta = item_vectors, id_part, w_text, beta
        self.is_new = np.zeros(len(self.texts), np.float32) if is_new is None else np.asarray(is_new, np.float32)
        self.max_len, self.batch_size, self.name = max_len, batch_size, name
        self._cache = {}

    def user_vectors(self, contexts) -> np.ndarray:
        """Encode context texts (memoised: the same context is encoded once)."""
        keys = [tuple(int(i) for i in c) for c in contexts]
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if todo:
            vecs = encode([context_text(self.texts, k) for k in todo], self.tokenizer, self.encoder,
                          max_len=self.max_len, batch_size=self.batch_size, desc="encoding contexts")
            self._cache.update(zip(todo, vecs))
        return np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, self.item_vectors.shape[1]))

    def text_scores(self, batch) -> np.ndarray:
        """Cosine of context and item texts; ``-inf`` rows for empty contexts (nothing to encode)."""
        known = np.array([len(c) > 0 for c in batch.context], dtype=bool)
        scores = np.full((len(batch.context), len(self.texts)), -np.inf, dtype=np.float32)
        if known.any():
            contexts = [c for c, ok in zip(batch.context, known) if ok]
            scores[known] = self.user_vectors(contexts) @ self.item_vectors.T
        return scores

    def score(self, batch) -> np.ndarray:
        """The blended score; a context with no known item (e.g. only unknown item ids) gets a row of
        ``-inf``: the model has nothing to say, and the evaluation counts the user as a miss."""
        scores = self.w_text * self.text_scores(batch) + self.beta * self.is_new
        if self.id_part is not None:
            scores = scores + self.id_part.score(batch)
        return scores.astype(np.float32)


class NewProductSlots:
    """A list policy: the first ``first`` places by relevance, the next ``n`` for products nobody has bought.

    A shop that launches products has to show them to someone before they can earn purchases (the
    ID part cannot score them, and one blended score pays for their exposure with relevance at the
    top of the list). This wrapper keeps the top ``first`` items of ``base`` and puts, right after
    them, the ``n`` new products (``is_new``) whose text is closest to the context (``text``: a
    recommender with ``text_scores``); the rest follow in ``base``'s order. Context items are never
    placed.
    """

    def __init__(self, base, text, is_new, first: int = 10, n: int = 10, name: str = "two-tower+id+new-slots"):
        self.base, self.text, self.first, self.n, self.name = base, text, first, n, name
        self.is_new = np.asarray(is_new, bool)

    def score(self, batch) -> np.ndarray:
        scores = np.array(self.base.score(batch), dtype=np.float64)
        text = np.array(self.text.text_scores(batch), dtype=np.float64)
        rows = np.arange(len(scores))
        for r, ctx in enumerate(batch.context):        # context items: never recommended again
            scores[r, ctx] = -np.inf
            text[r, ctx] = -np.inf
        out = np.full(scores.shape, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")
        top = order[:, : self.first]
        text[rows[:, None], top] = -np.inf              # already placed
        text[:, ~self.is_new] = -np.inf                 # the slots are for new products only
        picks = np.argsort(-text, axis=1, kind="stable")[:, : self.n]
        n_all = scores.shape[1]
        out[rows[:, None], order] = -np.arange(n_all, dtype=np.float64)[None, :] - 2.0 * n_all   # base order, below
        out[rows[:, None], top] = 3.0 * n_all - np.arange(top.shape[1])[None, :]                 # first places
        ok = np.isfinite(text[rows[:, None], picks])
        slot = 2.0 * n_all - np.arange(picks.shape[1])[None, :]
        out[rows[:, None], picks] = np.where(ok, slot, out[rows[:, None], picks])                  # the slots
        for r, ctx in enumerate(batch.context):
            out[r, ctx] = -np.inf
        out[~np.isfinite(scores).any(axis=1)] = -np.inf   # a row the base cannot score stays a miss
        return out.astype(np.float32)
