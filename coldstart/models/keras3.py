"""The course's encoder and two-tower retriever on Keras 3 and KerasHub, the maintained path (notebook 11).

transformers 5 has no TensorFlow classes, so the course's main path (``TFAutoModel`` on tf-keras) has
no future release. KerasHub loads the same checkpoint (a Hugging Face folder of safetensors, or a Hub
id) into a Keras 3 ``BertBackbone``; this module puts the course's pieces on it:

* :func:`load_backbone` -- the backbone and its tokenizer, from the profile's model name or folder;
* :class:`HubTokenizer` -- KerasHub's WordPiece tokenizer with the call the course's pair builders
  make (``tokenizer(texts, truncation=True, max_length=n)["input_ids"]``), so
  :mod:`coldstart.training.pairs` builds the very same ``tf.data`` pairs for either model;
* :func:`mean_pooled` and :func:`encode` -- the normalised mean-pooled sentence vectors of
  :func:`coldstart.models.encoders.encode`, written with ``keras.ops``;
* :class:`KerasTwoTower` -- notebook 03's :class:`~coldstart.models.bert.TwoTower` as a Keras 3
  model: the same in-batch softmax with the same masking of repeated items, in ``compute_loss``
  (Keras 3's own ``train_step`` calls it, so the model runs on any backend);
* :func:`freeze_embeddings` -- what ``body.bert.embeddings.trainable = False`` does in notebook 03;
* :func:`enable_lora` -- KerasHub's ``enable_lora`` with the projections' biases frozen, so its LoRA
  file holds everything that trained; :func:`lora_weight_count` counts from the shapes;
  :func:`load_lora` reloads that file on exactly the layers it was saved from.

The evaluation harness sees a model only through its catalog vectors: ``encode(...)`` gives them, and
:class:`~coldstart.models.baselines.TextSimilarity` or the course's ``fair_text_retriever`` score with
them exactly as they score the transformers model's vectors.

Keras 3 (``import keras``) and tf-keras (``tf.keras`` under ``TF_USE_LEGACY_KERAS=1``, which
``import coldstart`` sets) live side by side in one process; a model of one cannot hold layers or
optimizers of the other. ``keras_hub`` itself is imported on first use: without it this module still
imports, and the loaders raise :class:`KerasHubUnavailable` with the install line.
"""

from __future__ import annotations

import json
import os
import weakref
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._internal.progress import progress_bar
from .._internal.tf import import_tensorflow
from .._internal.versions import KERAS3_LIBRARIES, EnvironmentMismatch, installed_versions, keras3_problems
from .baselines import TextSimilarity
from .encoders import ModelUnavailable, length_batches, pad_batch, resolve_model
from .retrieval import EncodedContextSimilarity

tf = import_tensorflow()   # quietly, before Keras 3 imports it (the TensorFlow backend)

import keras  # noqa: E402  (Keras 3: the `keras` package; tf.keras is tf-keras in this course)
from keras import ops  # noqa: E402


class KerasHubUnavailable(EnvironmentMismatch):
    """keras-hub, or a version of it, keras or tensorflow-text that works with it, is not installed."""


def import_keras_hub():
    """The ``keras_hub`` module, after the version check of the Keras 3 chapter
    (:func:`~coldstart._internal.versions.keras3_problems`); :class:`KerasHubUnavailable` with the
    install line otherwise."""
    found = [] if os.environ.get("COLDSTART_SKIP_VERSION_CHECK") == "1" else keras3_problems(
        installed_versions(KERAS3_LIBRARIES))
    if found:
        raise KerasHubUnavailable(found[0] + " (then restart the kernel)")
    import keras_hub

    return keras_hub


def preset(name: Optional[str] = None) -> str:
    """What ``from_preset`` loads for a course model name: the local folder
    :func:`~coldstart.models.encoders.resolve_model` finds, else ``hf://<Hub id>`` (KerasHub converts a
    Hugging Face checkpoint when it is named that way)."""
    where = resolve_model(name)
    return where if Path(where).is_dir() else f"hf://{where}"


def load_backbone(name: Optional[str] = None):
    """``(HubTokenizer, BertBackbone)`` of a Hub id or local folder, as notebook 03's ``load_encoder``
    gives ``(tokenizer, TFAutoModel)``. The weights are read from the same safetensors file."""
    where = preset(name)
    hub = import_keras_hub()
    try:
        backbone = hub.models.Backbone.from_preset(where)
        tokenizer = hub.tokenizers.Tokenizer.from_preset(where, strip_accents=strips_accents(where))
    except (OSError, ValueError) as err:
        raise ModelUnavailable(f"KerasHub could not load {where!r} ({str(err).splitlines()[0][:160]})") from err
    return HubTokenizer(tokenizer), backbone


def strips_accents(where: str) -> bool:
    """Whether the checkpoint's tokenizer strips accents ("café" -> "cafe"). A Hugging Face BERT
    tokenizer with ``strip_accents`` unset strips them when it lower-cases; KerasHub's converter
    does not follow that rule (it keeps them, and "café" becomes ``[UNK]``), so the loader says it."""
    if where.startswith("hf://"):
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(where[len("hf://"):], "tokenizer_config.json")
    else:
        path = Path(where) / "tokenizer_config.json"
    config = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    strip = config.get("strip_accents")
    return bool(config.get("do_lower_case", False) if strip is None else strip)


class HubTokenizer:
    """KerasHub's tokenizer behind the call the course's pair builders make.

    ``tokenizer(texts, truncation=True, max_length=n)["input_ids"]`` gives one list of ids per text,
    ``[CLS] pieces [SEP]``, cut to ``n`` ids as a Hugging Face tokenizer cuts them (the pieces first,
    the two special ids kept). The vocabulary file is the checkpoint's own, so the ids are the ones
    transformers' tokenizer gives (a test compares them).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cls_id = tokenizer.token_to_id(tokenizer.cls_token)
        self.sep_id = tokenizer.token_to_id(tokenizer.sep_token)
        self.pad_id = tokenizer.token_to_id(tokenizer.pad_token)

    def __call__(self, texts, truncation: bool = True, max_length: Optional[int] = None, **unused) -> dict:
        texts = [texts] if isinstance(texts, str) else ["" if t is None else str(t) for t in texts]
        if not texts:
            return {"input_ids": []}
        pieces = self.tokenizer(texts)   # KerasHub gives lists of ids (or a ragged tensor inside tf.data)
        pieces = pieces.to_list() if hasattr(pieces, "to_list") else [list(map(int, p)) for p in pieces]
        keep = None if not truncation or max_length is None else max(0, int(max_length) - 2)
        return {"input_ids": [[self.cls_id, *p[:keep], self.sep_id] for p in pieces]}


def backbone_inputs(token_ids):
    """The three inputs of a BERT backbone for a padded batch of ids (0 is ``[PAD]``): the ids, one
    segment, and the mask of real tokens."""
    token_ids = ops.convert_to_tensor(token_ids, "int32")
    return {"token_ids": token_ids, "segment_ids": ops.zeros_like(token_ids),
            "padding_mask": ops.cast(ops.not_equal(token_ids, 0), "int32")}


def mean_pooled(backbone, token_ids, training: bool = False):
    """L2-normalised mean of the last hidden states over the real tokens: what
    :func:`~coldstart.models.encoders.encode` computes, in ``keras.ops``."""
    inputs = backbone_inputs(token_ids)
    hidden = backbone(inputs, training=training)["sequence_output"]
    mask = ops.cast(inputs["padding_mask"], hidden.dtype)[:, :, None]
    pooled = ops.sum(hidden * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)
    return ops.normalize(ops.cast(pooled, "float32"), axis=-1)


# backbone -> (weights fingerprint, compiled pass); weakly keyed, so a model nobody uses is freed
_COMPILED = weakref.WeakKeyDictionary()


def _forward(backbone):
    """The backbone's compiled pooled pass, traced once per backbone; traced again when its weights
    change (``enable_lora`` adds weights and a new path through the attention projections)."""
    key = tuple(id(w) for w in backbone.weights)
    cached = _COMPILED.get(backbone)
    if cached is None or cached[0] != key:
        ref = weakref.ref(backbone)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], autograph=False)
        def fn(token_ids):
            return mean_pooled(ref(), token_ids)

        _COMPILED[backbone] = cached = (key, fn)
    return cached[1]


def encode(texts: Sequence[str], tokenizer: HubTokenizer, backbone, max_len: int = 32, batch_size: int = 128,
           progress: Optional[bool] = None, desc: str = "encoding") -> np.ndarray:
    """Normalised mean-pooled vectors of ``texts`` (``(len(texts), hidden)``, float32), in batches
    sorted by length and padded to their own longest text, as the transformers path encodes."""
    texts = ["" if t is None else str(t) for t in texts]
    ids = tokenizer(texts, truncation=True, max_length=max_len)["input_ids"]
    out = np.zeros((len(texts), backbone.hidden_dim), dtype=np.float32)
    forward = _forward(backbone)
    for idx in progress_bar(length_batches([len(x) for x in ids], batch_size), desc=desc, enabled=progress):
        batch, _ = pad_batch(ids, idx)
        out[idx] = np.asarray(forward(tf.constant(batch)))
    return out


def catalog_scorer(tokenizer: HubTokenizer, backbone, texts, max_len: int = 32, batch_size: int = 128,
                   softness: Optional[float] = None, name: str = "keras3-text") -> TextSimilarity:
    """The course's text scorer over a KerasHub backbone's catalog vectors: a user is their clicks'
    item vectors, combined by their mean or a soft maximum (``softness``), as notebook 03 scores the
    taught tower. Any recommender of the course (``Retriever``, ``fair_text_retriever``) takes it."""
    vectors = encode(texts, tokenizer, backbone, max_len=max_len, batch_size=batch_size, progress=False,
                     desc="encoding the catalog")
    return TextSimilarity(vectors, name=name, softness=softness)


class KerasContextSimilarity(EncodedContextSimilarity):
    """:class:`~coldstart.models.retrieval.EncodedContextSimilarity` for a KerasHub backbone: the
    context written as one text and encoded by the backbone (notebook 03's first tower, contexts ->
    items), cosine with every item's vector."""

    def encode_texts(self, texts) -> np.ndarray:
        return encode(texts, self.tokenizer, self.encoder, max_len=self.context_len, batch_size=self.batch_size,
                      progress=self.progress, desc=self.desc)

    @classmethod
    def of_catalog(cls, tokenizer, encoder, texts, max_len: int = 32, batch_size: int = 128,
                   progress: Optional[bool] = None, **options):
        vectors = encode(texts, tokenizer, encoder, max_len=max_len, batch_size=batch_size, progress=progress,
                         desc="encoding the catalog")
        return cls(tokenizer, encoder, texts, vectors, batch_size=batch_size, progress=progress, **options)


def freeze_embeddings(backbone) -> None:
    """Freeze the token, position and segment embeddings and their LayerNorm: what
    ``body.bert.embeddings.trainable = False`` freezes in a transformers BERT."""
    for name in ("token_embedding", "position_embedding", "segment_embedding", "embeddings_layer_norm"):
        backbone.get_layer(name).trainable = False


# The course's LoRA target names (``peft.LORA_TARGETS``) -> the names of KerasHub's BERT layers
LORA_LAYER_NAMES = {"query": "query", "key": "key", "value": "value", "attention_output": "attention_output",
                    "intermediate": "feedforward_intermediate_dense", "output": "feedforward_output_dense"}


def _layer_names(targets: Sequence[str]) -> list:
    if isinstance(targets, str):
        targets = (targets,)
    unknown = [t for t in targets if t not in LORA_LAYER_NAMES]
    if unknown or not targets:
        raise ValueError(f"unknown LoRA targets {unknown or list(targets)}: choose from {', '.join(LORA_LAYER_NAMES)}")
    return [LORA_LAYER_NAMES[t] for t in dict.fromkeys(targets)]


def lora_weight_count(backbone, rank: int, targets: Sequence[str] = ("query", "value"), bias: bool = True) -> int:
    """The weights ``enable_lora(backbone, rank, targets)`` leaves trainable, from the layers' shapes:
    per projection named in ``targets`` (the course's names, as ``peft.add_lora`` takes them), ``A`` of
    shape ``kernel.shape[:-1] + (rank,)``, ``B`` of shape ``(rank, kernel.shape[-1])`` (Keras 3's
    ``enable_lora``) and, with ``bias``, the bias, which KerasHub leaves trainable. A BERT attention
    projection's kernel is (hidden, heads, head size), so ``A`` is per head there."""
    names = set(_layer_names(targets))
    total = 0
    for layer in backbone._flatten_layers(include_self=False):
        if layer.name in names and hasattr(layer, "enable_lora") and layer.weights:
            shape = tuple(layer.kernel.shape)
            total += int(np.prod(shape[:-1])) * rank + rank * shape[-1]
            if bias and getattr(layer, "bias", None) is not None:
                total += int(np.prod(layer.bias.shape))
    return total


def enable_lora(backbone, rank: int, targets: Sequence[str] = ("query", "value"), train_bias: bool = False) -> None:
    """``backbone.enable_lora(rank, target_layer_names=...)`` on the projections named in ``targets``
    (the course's names: KerasHub's default is query and value), with their biases frozen unless
    ``train_bias``.

    KerasHub's ``enable_lora`` leaves those biases trainable, but its ``save_lora_weights`` writes
    only the low-rank factors: a model trained that way and reloaded from its LoRA file has lost what
    the biases learned (a test shows it). Frozen, the file holds everything that trained."""
    backbone.enable_lora(rank, target_layer_names=_layer_names(targets))
    if not train_bias:
        for layer in backbone._flatten_layers(include_self=False):
            if getattr(layer, "lora_enabled", False) and getattr(layer, "bias", None) is not None:
                layer.bias.trainable = False


def _lora_file(path) -> tuple:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return int(np.asarray(f["lora/vars/rank"])), sorted(int(k) for k in f["lora"] if k.isdigit())
    except (OSError, KeyError) as error:
        raise ValueError(f"{path} is not a KerasHub LoRA file ({error}): write one with "
                         "backbone.save_lora_weights(...)") from None


def load_lora(backbone, path, rank: Optional[int] = None) -> list:
    """Load a KerasHub LoRA file (``backbone.save_lora_weights``) into ``backbone``, on exactly the
    layers it was saved from, and return their targets in the course's names.

    KerasHub's ``load_lora_weights`` loads the layers on which ``enable_lora`` was called and ignores
    the rest of the file, so a backbone enabled on fewer projections than the file holds loads without
    a word and computes another model. Here a backbone without LoRA is enabled on the file's layers
    (biases frozen, as :func:`enable_lora` does), and one enabled on other layers is refused."""
    path = str(path)
    file_rank, saved = _lora_file(path)
    if rank is not None and rank != file_rank:
        raise ValueError(f"{path} holds rank {file_rank}, not rank {rank}")
    layers = [layer for layer in backbone._flatten_layers(include_self=False) if layer.weights]
    names = [layers[i].name if i < len(layers) else None for i in saved]
    if not saved or not set(names) <= set(LORA_LAYER_NAMES.values()):
        raise ValueError(f"{path} was saved from another architecture: its layers {saved} are not the "
                         "LoRA projections of this backbone")
    targets = [t for t in LORA_LAYER_NAMES if LORA_LAYER_NAMES[t] in names]
    if not getattr(backbone, "_lora_enabled_layers", None):
        enable_lora(backbone, file_rank, targets)
    enabled = sorted(backbone._lora_enabled_layers)
    if enabled != saved:
        raise ValueError(f"{path} adapts {len(saved)} layers ({', '.join(targets)}), this backbone "
                         f"{len(enabled)}: call K3.enable_lora with the targets it was trained with, "
                         "or load into a backbone without LoRA")
    backbone.load_lora_weights(path)
    return targets


def trainable_count(model) -> int:
    """Trainable weights of a Keras 3 model (or layer), as a number of values."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


class KerasTwoTower(keras.Model):
    """Notebook 03's two-tower retriever in Keras 3: one shared backbone embeds the context and the
    item (mean-pooled, normalised), trained with the in-batch softmax at ``temperature``. Another
    pair's positive that is the same item as mine, or (item-to-item pairs) is my own anchor, is not a
    negative: its logit is masked, as ``TwoTower.train_step`` masks it. The loss is written in
    ``compute_loss``, so Keras 3's own ``train_step`` (any backend, loss scaling included) runs it.
    Taught verbatim in notebook 11.
    """

    def __init__(self, backbone, temperature: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone  # keras_hub.models.BertBackbone
        self.temperature = temperature

    def embed(self, ids, training=False):
        return mean_pooled(self.backbone, ids, training=training)

    def call(self, batch, training=False):
        users = self.embed(batch["context_ids"], training)   # (B, d)
        items = self.embed(batch["item_ids"], training)      # (B, d): row i is user i's positive
        return ops.matmul(users, ops.transpose(items)) / self.temperature  # (B, B) logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        n = ops.shape(y_pred)[0]
        item = x["item"]
        same = ops.equal(item[:, None], item[None, :])   # the same item as another user's positive
        if "context_item" in x:                          # item-to-item pairs: my own anchor is no negative
            same = ops.logical_or(same, ops.equal(x["context_item"][:, None], item[None, :]))
        mask = ops.logical_and(same, ops.logical_not(ops.cast(ops.eye(n), "bool")))
        logits = ops.where(mask, -1e9, y_pred)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(ops.arange(n), logits, from_logits=True))
