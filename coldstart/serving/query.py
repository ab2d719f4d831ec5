"""A customer's free-text query, encoded so each word's share of its vector is known.

:func:`encode_query` runs the encoder once on the query and keeps, besides the query's mean-pooled
vector, each word's exact share of it (:class:`Query`): the serving recommender explains a list by
the word that contributed most to each item.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re

import numpy as np

from .._internal.tf import import_tensorflow
from ..models.encoders import compiled_forward


@dataclasses.dataclass
class Query:
    """An encoded free-text query.

    ``vector`` is the L2-normalised mean-pooled query vector; ``word_parts`` (n_words x d) are the
    words' exact shares of it (``vector = word_parts.sum(0) + special-token part``), so
    ``word_parts @ v`` says how much each word adds to the cosine with an item vector ``v``.
    """

    text: str
    vector: np.ndarray
    words: list
    word_parts: np.ndarray
    truncated: bool
    n_tokens: int


# Characters that show nothing: C0/C1 controls (tab and newlines are kept as spaces), zero-width and
# direction marks, word joiners, the byte-order mark. A query made only of these is an empty query.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e"
                        "\u2060-\u206f\ufeff]")
# A wordpiece token covers at most ~100 characters (longer words become one [UNK]), so this many
# characters per token always hold more than ``max_len`` tokens: the rest is never tokenised.
CHARS_PER_TOKEN = 128


def visible(text) -> str:
    """``text`` without the characters that show nothing (see ``_INVISIBLE``); ``None`` is ``""``."""
    return "" if text is None else _INVISIBLE.sub("", str(text))


def encode_query(text: str, tokenizer, encoder, max_len: int = 64, lock=None) -> Query:
    """Encode a free-text query (one encoder call). Longer than ``max_len`` tokens: truncated.

    Only the first ``max_len * CHARS_PER_TOKEN`` characters are read (a 1 MB query costs what a
    long one does), invisible characters are dropped (:func:`visible`), and the tokenizer is called
    once, under ``lock`` when given: a fast tokenizer is one Rust object that raises "Already
    borrowed" when two threads change its settings at once. Raises ``ValueError`` for a text with
    nothing visible in it.
    """
    raw = "" if text is None else str(text)
    cap = max(1, int(max_len)) * CHARS_PER_TOKEN
    cut = len(raw) > cap
    text = visible(raw[:cap])
    if not text.strip():
        raise ValueError("the query is empty: type a few words, or recommend from clicks alone")
    tf = import_tensorflow()
    fast = getattr(tokenizer, "is_fast", False)
    with lock if lock is not None else contextlib.nullcontext():
        enc = tokenizer(text, truncation=False, add_special_tokens=True, return_offsets_mapping=fast)
        word_ids = enc.word_ids() if fast else None
    ids = list(enc["input_ids"])
    offsets = list(enc["offset_mapping"]) if fast else None
    full = len(ids)
    if full > max_len:   # what truncation=True gives: [CLS], the first max_len - 2 tokens, [SEP]
        keep = [*range(max_len - 1), full - 1]
        ids = [ids[i] for i in keep]
        if fast:
            word_ids, offsets = [word_ids[i] for i in keep], [offsets[i] for i in keep]
    ids = np.asarray(ids, np.int32)[None, :]
    hidden = compiled_forward(encoder, pooled=False)(tf.constant(ids), tf.constant(np.ones_like(ids))).numpy()[0]
    mean = hidden.mean(axis=0)
    norm = max(float(np.linalg.norm(mean)), 1e-12)
    shares = hidden / (len(hidden) * norm)   # the rows sum to the normalised query vector
    words, parts = _group_words(text, ids[0], word_ids, offsets, shares, tokenizer)
    return Query(text=text, vector=(mean / norm).astype(np.float32), words=words,
                 word_parts=parts.astype(np.float32), truncated=cut or full > max_len, n_tokens=ids.shape[1])


def _group_words(text, ids, word_ids, offsets, shares, tokenizer):
    """Sum token shares per word of the text (special tokens belong to no word). ``word_ids`` and
    ``offsets`` come from a fast tokenizer (``None`` for a slow one)."""
    words, parts = [], []
    if word_ids is not None:
        spans = {}
        for t, w in enumerate(word_ids):
            if w is None:
                continue
            lo, hi = offsets[t]
            if w not in spans:
                spans[w] = [lo, hi, [t]]
            else:
                spans[w][1] = hi
                spans[w][2].append(t)
        for w in sorted(spans):
            lo, hi, toks = spans[w]
            words.append(text[lo:hi])
            parts.append(shares[toks].sum(axis=0))
    else:  # slow tokenizers: one "word" per wordpiece
        tokens = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
        special = set(tokenizer.all_special_tokens)
        for t, tok in enumerate(tokens):
            if tok not in special:
                words.append(tok)
                parts.append(shares[t])
    dim = shares.shape[1]
    return words, (np.vstack(parts) if parts else np.zeros((0, dim), np.float32))
