"""A customer's free-text query, encoded so each word's share of its vector is known.

:func:`encode_query` runs the encoder once on the query and keeps, besides the query's mean-pooled
vector, each word's exact share of it (:class:`Query`): the serving recommender explains a list by
the word that contributed most to each item.
"""

from __future__ import annotations

import dataclasses

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


def encode_query(text: str, tokenizer, encoder, max_len: int = 64) -> Query:
    """Encode a free-text query (one encoder call). Longer than ``max_len`` tokens: truncated.

    Raises ``ValueError`` for an empty or blank text.
    """
    text = "" if text is None else str(text)
    if not text.strip():
        raise ValueError("the query is empty: type a few words, or recommend from clicks alone")
    tf = import_tensorflow()
    full = len(tokenizer(text, truncation=False, add_special_tokens=True)["input_ids"])
    enc = tokenizer(text, max_length=max_len, truncation=True,
                    return_offsets_mapping=getattr(tokenizer, "is_fast", False))
    ids = np.asarray(enc["input_ids"], np.int32)[None, :]
    hidden = compiled_forward(encoder, pooled=False)(tf.constant(ids), tf.constant(np.ones_like(ids))).numpy()[0]
    mean = hidden.mean(axis=0)
    norm = max(float(np.linalg.norm(mean)), 1e-12)
    shares = hidden / (len(hidden) * norm)   # the rows sum to the normalised query vector
    words, parts = _group_words(text, enc, shares, tokenizer)
    return Query(text=text, vector=(mean / norm).astype(np.float32), words=words,
                 word_parts=parts.astype(np.float32), truncated=full > max_len, n_tokens=ids.shape[1])


def _group_words(text, enc, shares, tokenizer):
    """Sum token shares per word of the original text (special tokens belong to no word)."""
    words, parts = [], []
    if getattr(tokenizer, "is_fast", False):
        word_ids = enc.word_ids()
        offsets = enc["offset_mapping"]
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
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        special = set(tokenizer.all_special_tokens)
        for t, tok in enumerate(tokens):
            if tok not in special:
                words.append(tok)
                parts.append(shares[t])
    dim = shares.shape[1]
    return words, (np.vstack(parts) if parts else np.zeros((0, dim), np.float32))
