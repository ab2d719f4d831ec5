"""Loading a pretrained BERT-family encoder and turning texts into vectors.

Model names
-----------
A model is named by a Hugging Face Hub id (``sentence-transformers/all-MiniLM-L6-v2``) or a local
folder. :func:`resolve_model` looks, in order, for: an existing folder of that name; a local copy
in ``$COLDSTART_MODELS_DIR`` (default ``<root>/models``) named after the id's last part
(``all-MiniLM-L6-v2``) or the whole id with ``/`` replaced by ``--``; and otherwise returns the Hub
id for transformers to download and cache. Offline (``HF_HUB_OFFLINE=1``) with nothing local, or
a folder that does not exist, raises :class:`ModelUnavailable` with the fix in one line.

Sentence vectors
----------------
:func:`encode` runs texts through the encoder and *mean-pools* the last hidden states over the
real (non-padding) tokens, then L2-normalises: the pooling all-MiniLM-L6-v2 was trained with, so
cosine similarity of two vectors is a dot product. Texts are sorted by length and batched so each
batch is padded only to its own longest text (dynamic padding), which is several times faster than
padding everything to ``max_len``. The model's compiled forward pass (:func:`compiled_forward`) is
traced once per model and kept by this module, not on the model.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .._internal.progress import progress_bar
from .._internal.tf import import_tensorflow, quiet_transformers
from ..config import DEFAULT_MODEL, project_root


class ModelUnavailable(RuntimeError):
    """The model cannot be found locally and cannot be downloaded."""


def models_dir() -> Path:
    """Folder of local model copies: ``$COLDSTART_MODELS_DIR`` or ``<root>/models``."""
    return Path(os.environ.get("COLDSTART_MODELS_DIR") or project_root() / "models").expanduser()


def resolve_model(name: Optional[str] = None) -> str:
    """Return a loadable model path or Hub id for ``name`` (see the module docstring)."""
    name = name or os.environ.get("COLDSTART_MODEL") or DEFAULT_MODEL
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1:
        raise ModelUnavailable(
            f"Model folder {name!r} does not exist: check the path, or pass a Hub id such as {DEFAULT_MODEL!r}"
        )
    local = models_dir()
    for cand in (local / name.split("/")[-1], local / name.replace("/", "--")):
        if (cand / "config.json").is_file():
            return str(cand)
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        try:
            from huggingface_hub import try_to_load_from_cache

            if isinstance(try_to_load_from_cache(name, "config.json"), str):
                return name
        except Exception:  # pragma: no cover - hub library layout changes
            pass
        raise ModelUnavailable(
            f"Model {name!r} is not available offline: put a copy in {local}/{name.split('/')[-1]} "
            "(run `make fetch` while online) or set COLDSTART_MODELS_DIR to a folder holding it"
        )
    return name


def safe_load_options(where: str) -> dict:
    """Loading options that never run code from a model: ``trust_remote_code=False`` always (a
    config naming its own Python classes is refused, no ``[y/N]`` prompt), and ``local_files_only``
    for a folder (a folder is read, never looked up on the Hub)."""
    return {"trust_remote_code": False, "local_files_only": Path(where).is_dir()}


def _loading(where: str, load):
    """``load(where)`` with transformers quiet; a missing or unreadable model raises ModelUnavailable,
    and so does a model that asks to run its own code."""
    import_tensorflow()
    quiet_transformers()
    try:
        return load(where)
    except ValueError as err:
        if "trust_remote_code" not in str(err):
            raise
        raise ModelUnavailable(
            f"Model {where!r} names its own Python code (auto_map in its config): coldstart never runs code "
            "from a model, so use a standard BERT-family model or save it again with save_pretrained"
        ) from err
    except OSError as err:
        raise ModelUnavailable(
            f"Could not load model {where!r} ({str(err).splitlines()[0][:120]}): check the name, your "
            f"network, or put a local copy in {models_dir()} and set COLDSTART_MODELS_DIR"
        ) from err


def load_tokenizer(name: Optional[str] = None):
    """The tokenizer of a Hub id or local folder (see :func:`resolve_model`)."""
    from transformers import AutoTokenizer

    where = resolve_model(name)
    return _loading(where, lambda w: AutoTokenizer.from_pretrained(w, **safe_load_options(w)))


def load_encoder(name: Optional[str] = None, tokenizer=None, **config):
    """Load ``(tokenizer, TF encoder)`` for a Hub id or local folder (see :func:`resolve_model`).

    ``tokenizer``: use this one instead of loading the model's (for a checkpoint saved without its
    tokenizer). Keyword arguments override the model's configuration, e.g. ``hidden_dropout_prob=0.3``.
    """
    from transformers import TFAutoModel

    where = resolve_model(name)
    if tokenizer is None:
        tokenizer = load_tokenizer(where)
    return tokenizer, _loading(where, lambda w: TFAutoModel.from_pretrained(w, **safe_load_options(w), **config))


def mean_pool(hidden, mask):
    """Average token vectors over the real tokens: ``sum(h * m) / sum(m)`` (TensorFlow)."""
    tf = import_tensorflow()
    mask = tf.cast(mask, hidden.dtype)[:, :, None]
    return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)


def _structure(model) -> int:
    """A fingerprint of the model's layer structure: changes when layers are inserted or replaced
    (adapters, LoRA), not when weights train. Keras's own walk over nested layers, not
    ``tf.Module.submodules`` (which also walks every attribute and variable, and costs as much as
    encoding a short text)."""
    walk = getattr(model, "_flatten_layers", None)
    layers = walk(include_self=False, recursive=True) if walk else getattr(model, "submodules", ())
    return hash(tuple(id(m) for m in layers))


# model -> {pooled: (structure, compiled pass)}; weakly keyed, and the passes reach the model through a
# weak reference only, so a model nobody uses any more is freed with its passes
_COMPILED = weakref.WeakKeyDictionary()


def compiled_forward(model, pooled: bool = True):
    """The model's compiled forward pass ``fn(input_ids, attention_mask)``: mean-pooled vectors
    (``pooled``, what :func:`encode` uses) or the last hidden states (a query's token vectors).

    Traced once per model and reused by every call: its signature leaves batch size and length open,
    so one graph serves every batch shape (letting TensorFlow relax the shapes itself would trace and
    prepare a second graph on the second shape). A traced graph keeps calling the layers it was
    traced with, so when layers are inserted into the model afterwards (adapters or LoRA added to a
    model that already encoded something) the pass is traced again; otherwise the new layers would
    be silently skipped.
    """
    tf = import_tensorflow()
    passes = _COMPILED.setdefault(model, {})
    key = _structure(model)
    if passes.get(pooled, (None,))[0] != key:
        ref = weakref.ref(model)
        ids = tf.TensorSpec([None, None], tf.int32)

        @tf.function(input_signature=[ids, ids], autograph=False)  # plain graph code: no AutoGraph rewrite needed
        def fn(input_ids, attention_mask):
            hidden = ref()(input_ids=input_ids, attention_mask=attention_mask, training=False).last_hidden_state
            return mean_pool(hidden, attention_mask) if pooled else hidden

        passes[pooled] = (key, fn)
    return passes[pooled][1]


def length_batches(lengths: Sequence[int], batch_size: int) -> list:
    """Index batches of texts sorted by length (longest first), so each batch pads little."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(sequences: Sequence[Sequence[int]], idx) -> tuple:
    """``(ids, mask)``: the token sequences at ``idx`` padded with 0 ([PAD]) to the longest of them,
    int32, and the mask of their real tokens."""
    width = max(1, max(len(sequences[i]) for i in idx))
    ids = np.zeros((len(idx), width), dtype=np.int32)
    mask = np.zeros_like(ids)
    for row, i in enumerate(idx):
        ids[row, : len(sequences[i])] = sequences[i]
        mask[row, : len(sequences[i])] = 1
    return ids, mask


def padded_batches(sequences: Sequence[Sequence[int]], batch_size: int, order: Optional[np.ndarray] = None):
    """Yield ``(index, ids, mask)`` numpy batches of ``batch_size`` sequences taken in ``order``,
    each padded to its own longest sequence (:func:`pad_batch`)."""
    order = np.arange(len(sequences)) if order is None else order
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        yield (idx, *pad_batch(sequences, idx))


def encode(
    texts: Sequence[str],
    tokenizer,
    model,
    max_len: int = 32,
    batch_size: int = 128,
    normalize: bool = True,
    progress: Optional[bool] = None,
    desc: str = "encoding",
    lock=None,
) -> np.ndarray:
    """Mean-pooled (and L2-normalised) sentence vectors of ``texts``, shape ``(len(texts), hidden)``.

    Empty texts are encoded as ``[CLS] [SEP]``; texts longer than ``max_len`` tokens are truncated.
    ``lock``, when given, is held while the tokenizer runs (a fast tokenizer shared with other
    threads is one Rust object that raises "Already borrowed" when two use it at once).
    """
    tf = import_tensorflow()
    texts = ["" if t is None else str(t) for t in texts]
    if not texts:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    with lock if lock is not None else contextlib.nullcontext():
        ids = tokenizer(texts, max_length=max_len, truncation=True, padding=False)["input_ids"]
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)

    forward = compiled_forward(model)
    for idx in progress_bar(length_batches([len(x) for x in ids], batch_size), desc=desc, enabled=progress):
        batch, mask = pad_batch(ids, idx)
        out[idx] = forward(tf.constant(batch), tf.constant(mask)).numpy()
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
