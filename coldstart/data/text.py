"""The course's text rules, written once: how a description is normalised, which description an
item gets, how a context becomes one text, and what "TF-IDF" means here.

* :func:`normalise_text` / :func:`normalise_series` -- strip, collapse whitespace, lower-case, drop
  meaningless trailing punctuation.
* :func:`most_frequent_text` -- an item's text is its most frequent (normalised) description; ties
  go to the description seen first.
* :func:`price_band` / :func:`with_price_band` -- a product's price in words ("two to five pounds"),
  written after its text: a fact a shop knows when it lists a product, before anyone buys it.
* :func:`context_text` -- a user's context written as one text for an encoder: its items' texts
  joined by :data:`CONTEXT_SEPARATOR`, in click order (or the most recent first, for histories
  that may be truncated from the end).
* :func:`tfidf_vectors` / :func:`tfidf_similarity` -- L2-normalised TF-IDF vectors of word uni- and
  bigrams with sublinear term frequencies, and their cosine similarity; the options say where a
  caller departs from that default.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

# Trailing punctuation that carries no meaning ("LUNCH BAG BLACK SKULL.", "BIRTHDAY CARD,").
# Closing quotes and brackets are kept: 'RETRO "TEA FOR ONE"', 'SCISSOR(POINTED EDGE)', 42" (inches).
_TRAILING_JUNK = r"[\s.,;:!?\-_/\\*+&|~]+$"

CONTEXT_SEPARATOR = " ; "

# Upper bounds in pounds (exclusive) and their words: round amounts a shopper would name, and words
# rather than digits, which a language model read far more often in pretraining.
PRICE_BANDS = ((1.0, "under one pound"), (2.0, "one to two pounds"), (5.0, "two to five pounds"),
               (10.0, "five to ten pounds"), (float("inf"), "over ten pounds"))
PRICE_SEPARATOR = " , "


def normalise_text(s) -> str:
    """Normalise one description: strip, collapse whitespace, lower-case, drop trailing junk.

    Non-ASCII letters are kept (``"£"``, ``"é"``); a missing value gives ``""``.

    >>> normalise_text("  LUNCH BAG  BLACK SKULL. ")
    'lunch bag black skull'
    """
    if s is None or s is pd.NA or (isinstance(s, float) and np.isnan(s)):
        return ""
    if isinstance(s, (bytes, bytearray)):
        s = bytes(s).decode("utf-8", errors="replace")
    s = re.sub(r"\s+", " ", str(s)).strip().lower()
    return re.sub(_TRAILING_JUNK, "", s)


def normalise_series(text: pd.Series) -> pd.Series:
    """:func:`normalise_text` for a whole column, with vectorised string methods."""
    out = text.astype("string").fillna("")
    out = out.str.replace(r"\s+", " ", regex=True).str.strip().str.lower()
    return out.str.replace(_TRAILING_JUNK, "", regex=True)


def most_frequent_text(items, descriptions: pd.Series, order) -> pd.Series:
    """Each item's most frequent description after :func:`normalise_series`: ``item -> text``.

    ``items``, ``descriptions`` and ``order`` are aligned, one entry per row of a table; ``order``
    ranks the rows (e.g. their line in the file), and a tie between two descriptions goes to the one
    whose first row comes first. Normalising first counts variants that differ only in spacing or
    case together. Returns a Series indexed by item, sorted by item.
    """
    rows = pd.DataFrame({"item": np.asarray(items), "text": normalise_series(descriptions).to_numpy(),
                         "order": np.asarray(order)})
    counts = rows.groupby(["item", "text"], sort=False).agg(n=("order", "size"), first=("order", "min"))
    return (counts.reset_index()
            .sort_values(["item", "n", "first"], ascending=[True, False, True])
            .drop_duplicates("item")
            .set_index("item")["text"])


def price_band(price) -> str:
    """A price in pounds as the words of its band (:data:`PRICE_BANDS`); ``""`` for a missing price.

    >>> price_band(2.95)
    'two to five pounds'

    Raises ``ValueError`` for a negative or infinite price (a refund or a data error, not a product's
    price) and for anything that is not a number.
    """
    if price is None or price is pd.NA:
        return ""
    if isinstance(price, (str, bytes, bool, np.bool_)):
        raise ValueError(f"a price must be a number of pounds, not {price!r}")
    price = float(price)
    if np.isnan(price):
        return ""
    if price < 0 or np.isinf(price):
        raise ValueError(f"a price must be finite and not negative ({price}): give the product's listing "
                         "price in pounds")
    return next(words for top, words in PRICE_BANDS if price < top)


def with_price_band(texts: Sequence[str], prices) -> list:
    """Each text followed by its price band: ``"<text> , <band>"`` (the text alone where the price is
    missing). ``texts`` and ``prices`` are aligned.

    >>> with_price_band(["lunch bag red retrospot"], [1.65])
    ['lunch bag red retrospot , one to two pounds']
    """
    texts, prices = list(texts), list(prices)
    if len(texts) != len(prices):
        raise ValueError(f"{len(texts)} texts but {len(prices)} prices: give one price per text")
    bands = [price_band(p) for p in prices]
    return [f"{t}{PRICE_SEPARATOR}{b}" if b else str(t) for t, b in zip(texts, bands)]


def context_text(item_texts: Sequence[str], newest_first: bool = False, last: Optional[int] = None,
                 sep: str = CONTEXT_SEPARATOR) -> str:
    """A context written as one text: the texts of its items joined by ``sep`` (:data:`CONTEXT_SEPARATOR`).

    ``item_texts`` are in click order (oldest first). ``newest_first`` writes the most recent item
    first, and ``last`` keeps only the ``last`` most recent items: a history cut to an encoder's
    length then loses its oldest items, not its newest.

    >>> context_text(["red mug", "tea set"])
    'red mug ; tea set'
    >>> context_text(["a", "b", "c"], newest_first=True, last=2)
    'c ; b'
    """
    texts = list(item_texts)
    if newest_first:
        texts = texts[::-1]
    if last is not None:
        texts = texts[:last] if newest_first else texts[len(texts) - last:]
    return sep.join(texts)


def tfidf_vectors(texts: Sequence[str], words: tuple = (1, 2), sublinear: bool = True,
                  fit_on: Optional[np.ndarray] = None) -> sp.csr_matrix:
    """L2-normalised TF-IDF vectors of ``texts`` (float32 CSR, one row per text).

    ``words``: the word n-gram range (default uni- and bigrams); ``sublinear``: ``1 + log(tf)``
    term frequencies. The vocabulary and IDF weights are learnt from the texts selected by
    ``fit_on`` (boolean mask or positions; default all), so texts outside it cannot change the
    vectors of texts inside it; a text of unseen words gets an all-zero row.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = list(texts)
    vectorizer = TfidfVectorizer(ngram_range=words, sublinear_tf=sublinear)
    if fit_on is None:
        vectors = vectorizer.fit_transform(texts)
    else:
        vectors = vectorizer.fit(list(np.asarray(texts, dtype=object)[np.asarray(fit_on)])).transform(texts)
    return vectors.astype(np.float32)


def tfidf_similarity(texts: Sequence[str], **options) -> np.ndarray:
    """Dense float32 cosine similarity of :func:`tfidf_vectors` (same ``options``)."""
    vectors = tfidf_vectors(texts, **options)
    return np.asarray((vectors @ vectors.T).toarray(), dtype=np.float32)
