"""The BERT models notebook 03 teaches, for later chapters to import.

Notebook 03 defines each class in its own cell, verbatim; the cell is tagged with the class's name
here and a test keeps the two identical, so what a reader copies from the chapter is what the
course runs.

* :class:`CrossEncoder` -- the CTR formulation: BERT reads "[context] [SEP] [candidate]" and
  outputs one logit; trained with binary cross-entropy on bought vs. sampled items.
* :class:`TwoTower` -- a retriever: one shared BERT encoder with mean pooling embeds the context
  text and each item text; trained with an in-batch softmax (temperature) so the context lands near
  the item bought. Items are embedded once into an index; a user costs one encoder call
  (:class:`~coldstart.models.retrieval.EncodedContextSimilarity` scores with it). Its loss is
  :func:`in_batch_softmax_loss`.
* :class:`OneTraceModel` -- the base of both: ``compile`` builds the optimizer's state, so the first
  training step is traced once.
"""

from __future__ import annotations

from .._internal.tf import import_tensorflow
from .encoders import mean_pool

tf = import_tensorflow()


class OneTraceModel(tf.keras.Model):
    """A Keras model whose ``compile`` builds the optimizer's state (Adam's moments) at once.

    Made inside the first training step instead, the state makes TensorFlow trace that step twice:
    seconds per model for BERT (notebook 03, appendix). Only when the model's layers are built (a
    transformers model from ``from_pretrained`` is); otherwise Keras builds the state as usual.
    """

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if all(layer.built for layer in self.layers):
            self.optimizer.build(self.trainable_variables)


class CrossEncoder(OneTraceModel):
    """P(buy | context, candidate) = sigmoid(one logit of BERT over the text pair). Taught verbatim in notebook 03."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier  # TFAutoModelForSequenceClassification with num_labels=1

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


def in_batch_softmax_loss(logits, batch):
    """Mean cross-entropy of each row's own item (column i) against every other candidate of the batch.

    A candidate that is the same product as the row's positive (or, for item-to-item pairs, as its
    context item) is not a negative: its logit is masked. Taught verbatim in notebook 03.
    """
    n, m = tf.shape(logits)[0], tf.shape(logits)[1]
    candidates = batch["item"]
    if "neg_item" in batch:  # the hard negatives follow the positives
        candidates = tf.concat([candidates, batch["neg_item"]], axis=0)
    same = tf.equal(batch["item"][:, None], candidates[None, :])
    if "context_item" in batch:
        same |= tf.equal(batch["context_item"][:, None], candidates[None, :])
    logits = tf.where(same & ~tf.eye(n, m, dtype=tf.bool), -1e9, logits)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(n), logits))


class TwoTower(OneTraceModel):
    """Shared-encoder two-tower retriever trained with an in-batch softmax. Taught verbatim in notebook 03."""

    def __init__(self, encoder, temperature: float = 0.05):
        super().__init__()
        self.encoder = encoder  # TFAutoModel: the BERT body, no head
        self.temperature = temperature
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")

    def embed(self, ids, training=False):
        mask = tf.cast(ids != 0, tf.int32)
        hidden = self.encoder(input_ids=ids, attention_mask=mask, training=training).last_hidden_state
        return tf.math.l2_normalize(tf.cast(mean_pool(hidden, mask), tf.float32), axis=-1)

    def call(self, batch, training=False):
        users = self.embed(batch["context_ids"], training)   # (B, d)
        items = self.embed(batch["item_ids"], training)      # (B, d): row i is user i's positive
        if "neg_ids" in batch:                               # one hard negative per pair: (2B, d)
            items = tf.concat([items, self.embed(batch["neg_ids"], training)], axis=0)
        return tf.matmul(users, items, transpose_b=True) / self.temperature  # (B, B) or (B, 2B) logits

    @tf.autograph.experimental.do_not_convert  # plain graph code: AutoGraph's rewrite of BERT only costs seconds
    def train_step(self, batch):
        with tf.GradientTape() as tape:
            loss = in_batch_softmax_loss(self(batch, training=True), batch)
            scaled = loss / tf.distribute.get_strategy().num_replicas_in_sync  # gradients are summed over replicas
        # minimize, not tape.gradient: under mixed_float16 it scales the loss so small gradients do not underflow
        self.optimizer.minimize(scaled, self.trainable_variables, tape=tape)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]
