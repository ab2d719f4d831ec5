"""Serving the course's retriever to a new customer, click by click (notebook 07).

A :class:`Recommender` is everything a shop needs at serving time, and nothing of the training data:

* the **encoder** (a fine-tuned two-tower body from notebook 03, or the pretrained one, zero-shot)
  and its tokenizer, used only to encode a free-text query and new products;
* the **item index**: every catalog item's L2-normalised text vector, computed once (``index``);
* the **ID part** (optional): the item-to-item matrix of :class:`coldstart.models.ItemRegression`;
* the **catalog** (item ids and texts), which items are new (no purchases before the cutoff), and
  the **popularity** of each item overall and per country, for a customer we know nothing about.

Scoring recipe (the one notebook 03 tunes; ``runs/<profile>/retriever.json`` holds its choices)::

    score(u, i) = ID(u, i) + w_text * cos(u, v_i) + beta * [i is new]

The user vector ``u`` is the normalised mean of the clicked items' index vectors and, when the
customer typed something, the query's vector. So a **click** costs a few numpy operations over the
index (no encoder call); a **query** costs one encoder call on a short text. ``ID(u, i)`` is the sum
of the clicked items' rows of the ID matrix (``x B``, as :meth:`ItemRegression.score`); items added
after training have no row or column in it and score 0 there.

Every list comes with a **reason** per item: the clicked item (``bought with "..."`` when its ID
part contributes most, ``similar to "..."`` when its text does) or the query word (``searched
"..."``) that contributed most to that item's score. The query's share is split exactly over its
words: the query vector is a mean of token vectors, so each word's contribution is the dot product
of its tokens' share of that mean with the item vector. With no usable context the list is the
country's popularity (``popular in France``), else global popularity (``popular overall``).

Defined behaviour for bad input (tested in ``tests/test_serving.py``):

* unknown item ids are ignored and listed in ``result.attrs["unknown_items"]``;
* an empty or blank query is ignored (a note says so);
* a query longer than ``query_max_len`` tokens is truncated (a note says so);
* non-ASCII text is encoded like any other (uncased BERT vocabularies strip accents);
* no clicks and no query: country popularity, then global popularity (``attrs["fallback"]``).

Persistence: :meth:`Recommender.save` writes one folder (encoder weights and tokenizer, index,
ID matrix, catalog, popularity, versions) atomically; :meth:`Recommender.load` needs nothing else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .._internal.io import make_temp_dir, swap_in_dir

FORMAT_VERSION = 1
COLUMNS = ["item_id", "text", "score", "reason"]


# -- the scoring recipe --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Recipe:
    """The weights of ``ID + w_text * cosine + beta * [new]``.

    ``lam`` is the ID part's ridge strength (``None``: no ID part); ``dropout`` and ``customers`` are
    the rest of its fit (:class:`~coldstart.models.ItemRegression`'s ``dropout``; ``customers=True``
    adds one row per customer to the training baskets, :func:`~coldstart.baselines.basket_matrix`).
    Defaults: text only, no bias.
    """

    w_text: float = 1.0
    beta: float = 0.0
    lam: Optional[float] = None
    dropout: float = 0.0
    customers: bool = False

    @classmethod
    def from_dict(cls, values: dict) -> "Recipe":
        """Read a recipe; ``w`` is accepted for ``w_text``. Unknown keys raise ``ValueError``."""
        values = dict(values)
        if "w" in values and "w_text" not in values:
            values["w_text"] = values.pop("w")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown recipe keys {unknown}: expected some of {sorted(known)}")
        out = {k: (None if v is None else bool(v) if k == "customers" else float(v)) for k, v in values.items()}
        return cls(**out)


def read_recipe(path) -> Optional[Recipe]:
    """The recipe in a ``retriever.json`` written by notebook 03 (``None`` if the file is missing).

    The file may hold other keys (metrics, dates); only ``w_text`` (or ``w``), ``beta``, ``lam``,
    ``dropout`` and ``customers`` are read, at the top level or under ``"recipe"``.
    """
    path = Path(path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    data = data.get("recipe", data)
    if "w" in data and "w_text" not in data:
        data = {**data, "w_text": data["w"]}
    return Recipe.from_dict({k: data[k] for k in ("w_text", "beta", "lam", "dropout", "customers") if k in data})


# -- the query side ------------------------------------------------------------------------------------
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


def _forward_fn(model):
    """The encoder's compiled forward pass returning token states (traced once, any length)."""
    import tensorflow as tf

    fn = getattr(model, "_coldstart_token_forward", None)
    if fn is None:
        spec = tf.TensorSpec([None, None], tf.int32)

        @tf.function(input_signature=[spec, spec], autograph=False)  # plain graph code: no AutoGraph rewrite needed
        def fn(input_ids, attention_mask):
            return model(input_ids=input_ids, attention_mask=attention_mask, training=False).last_hidden_state

        model._coldstart_token_forward = fn
    return fn


# -- the recommender -----------------------------------------------------------------------------------
class Recommender:
    """A new-user recommender over a precomputed item index (see the module docstring).

    Build one with :meth:`from_split` (or :func:`for_profile`), or read one with :meth:`load`.
    """

    def __init__(self, tokenizer, encoder, item_ids: Sequence[str], texts: Sequence[str], index: np.ndarray, *,
                 is_new=None, popularity=None, countries: Sequence[str] = (), country_popularity=None,
                 id_matrix=None, recipe: Recipe = Recipe(), max_len: int = 32, query_max_len: int = 64,
                 source: str = "", country_backoff: float = 0.1, blas_threads: Optional[int] = 1):
        n = len(item_ids)
        self.tokenizer, self.encoder = tokenizer, encoder
        self.item_ids = [str(i) for i in item_ids]
        if len(set(self.item_ids)) != n:
            raise ValueError("item ids must be unique")
        self.texts = ["" if t is None else str(t) for t in texts]
        index = np.ascontiguousarray(index, dtype=np.float32)
        if len(self.texts) != n or index.shape[0] != n:
            raise ValueError(f"{n} item ids, {len(self.texts)} texts and {index.shape[0]} index rows: they must match")
        self.index = index
        self.is_new = np.zeros(n, np.float32) if is_new is None else np.asarray(is_new, np.float32).copy()
        self.popularity = np.zeros(n, np.float32) if popularity is None else np.asarray(popularity, np.float32).copy()
        self.countries = [str(c) for c in countries]
        self.country_popularity = (np.zeros((len(self.countries), n), np.float32) if country_popularity is None
                                   else np.asarray(country_popularity, np.float32).copy())
        if self.country_popularity.shape != (len(self.countries), n):
            raise ValueError("country_popularity must be (countries x items)")
        self.id_matrix = None if id_matrix is None else np.ascontiguousarray(id_matrix, dtype=np.float32)
        if recipe.lam is not None and self.id_matrix is None:
            raise ValueError("the recipe has an ID part (lam) but no id_matrix was given")
        self.recipe, self.max_len, self.query_max_len = recipe, int(max_len), int(query_max_len)
        self.source, self.country_backoff = source, float(country_backoff)
        self._pos = {item: i for i, item in enumerate(self.item_ids)}
        self._country = {c: i for i, c in enumerate(self.countries)}
        self.blas_threads = blas_threads

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_split(cls, split, encoder=None, tokenizer=None, recipe: Optional[Recipe] = None, *,
                   max_len: int = 32, query_max_len: int = 64, batch_size: int = 128, source: str = "",
                   progress: Optional[bool] = None) -> "Recommender":
        """Build the recommender for a protocol split's catalog.

        ``encoder``: a ``TFAutoModel`` body, a :class:`~coldstart.models.TwoTower` (its body is used),
        a folder saved with ``save_pretrained`` or a model name (default: the profile's model,
        zero-shot). ``tokenizer`` defaults to the one saved beside the encoder, else the model's.
        The catalog is encoded once (the index); popularity comes from ``split.train`` only; the
        ID part is fitted on the training baskets when ``recipe.lam`` is set.
        """
        from ..models.baselines import CountryPopularity, basket_matrix
        from ..models.encoders import encode

        recipe = recipe or Recipe()
        tokenizer, encoder, where = _resolve_encoder(encoder, tokenizer)
        texts = split.texts()
        index = encode(texts, tokenizer, encoder, max_len=max_len, batch_size=batch_size, progress=progress,
                       desc="encoding the catalog")
        pop = CountryPopularity(split)
        countries = sorted(pop.countries, key=pop.countries.get)
        id_matrix = None
        if recipe.lam is not None:
            from ..models.bert import ItemRegression

            baskets = basket_matrix(split, customers=recipe.customers)
            id_matrix = ItemRegression(baskets, lam=recipe.lam, dropout=recipe.dropout).B
        is_new = (split.catalog["train_customers"].to_numpy() == 0).astype(np.float32)
        rec = cls(tokenizer, encoder, split.item_ids, texts, index, is_new=is_new, popularity=pop.glob,
                  countries=countries, country_popularity=pop.share, id_matrix=id_matrix, recipe=recipe,
                  max_len=max_len, query_max_len=query_max_len, source=source or where)
        return rec.warm_up()

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        id_part = "none" if self.id_matrix is None else f"{self.id_matrix.shape[0]} items"
        return (f"Recommender({self.n_items} items, {int(self.is_new.sum())} new, index {self.index.shape[1]}-d, "
                f"ID part: {id_part}, w_text={self.recipe.w_text}, beta={self.recipe.beta}, source={self.source!r})")

    # -- encoding ----------------------------------------------------------------------------------
    def encode_query(self, text: str) -> Query:
        """Encode a free-text query (one encoder call). Longer than ``query_max_len`` tokens: truncated.

        Raises ``ValueError`` for an empty or blank text (:meth:`recommend` ignores those instead).
        """
        text = "" if text is None else str(text)
        if not text.strip():
            raise ValueError("the query is empty: type a few words, or recommend from clicks alone")
        import tensorflow as tf

        enc = self.tokenizer(text, truncation=False, add_special_tokens=True)
        full = len(enc["input_ids"])
        enc = self.tokenizer(text, max_length=self.query_max_len, truncation=True,
                             return_offsets_mapping=getattr(self.tokenizer, "is_fast", False))
        ids = np.asarray(enc["input_ids"], np.int32)[None, :]
        hidden = _forward_fn(self.encoder)(tf.constant(ids), tf.constant(np.ones_like(ids))).numpy()[0]
        mean = hidden.mean(axis=0)
        norm = max(float(np.linalg.norm(mean)), 1e-12)
        shares = hidden / (len(hidden) * norm)   # the rows sum to the normalised query vector
        words, parts = _group_words(text, enc, shares, self.tokenizer)
        return Query(text=text, vector=(mean / norm).astype(np.float32), words=words,
                     word_parts=parts.astype(np.float32), truncated=full > self.query_max_len, n_tokens=ids.shape[1])

    def add_items(self, texts: Sequence[str], ids: Optional[Sequence[str]] = None) -> list:
        """Put new products into the index now (they need a text, no purchases). Returns their ids.

        New products count as new (``beta`` applies), have no popularity and no ID part. ``ids``
        default to ``new-1``, ``new-2``, ... Raises ``ValueError`` (and changes nothing) for an
        empty text, a repeated or existing id, or a length mismatch.
        """
        from ..models.encoders import encode

        texts = [str(t) for t in texts]
        if ids is None:
            start = sum(1 for i in self.item_ids if i.startswith("new-")) + 1
            ids = [f"new-{start + j}" for j in range(len(texts))]
        ids = [str(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        blank = [i for i, t in zip(ids, texts) if not t.strip()]
        if blank:
            raise ValueError(f"products {blank} have an empty text: the index needs a text to place a product")
        taken = [i for i in ids if i in self._pos]
        if taken or len(set(ids)) != len(ids):
            raise ValueError(f"ids already in the catalog or repeated: {taken or ids}")
        if not texts:
            return []
        vectors = encode(texts, self.tokenizer, self.encoder, max_len=self.max_len, progress=False)
        m = len(texts)
        self.index = np.vstack([self.index, vectors]).astype(np.float32)
        self.item_ids += ids
        self.texts += texts
        self.is_new = np.concatenate([self.is_new, np.ones(m, np.float32)])
        self.popularity = np.concatenate([self.popularity, np.zeros(m, np.float32)])
        self.country_popularity = np.hstack([self.country_popularity, np.zeros((len(self.countries), m), np.float32)])
        self._pos.update({item: len(self._pos) + j for j, item in enumerate(ids)})
        return ids

    def warm_up(self) -> "Recommender":
        """Run one query and one click, so the first customer does not pay for tracing the encoder's
        graph (seconds) and for first-call allocations. Called by :meth:`from_split` and :meth:`load`."""
        self.recommend(self.item_ids[:1], query_text="warm up", k=1)
        return self

    # -- recommending ------------------------------------------------------------------------------
    def positions(self, items: Iterable) -> tuple:
        """``(positions of known ids in click order, unknown ids)``; repeated clicks count once."""
        known, unknown = [], []
        for item in items:
            item = str(item)
            pos = self._pos.get(item)
            if pos is None:
                unknown.append(item)
            elif pos not in known:
                known.append(pos)
        return np.asarray(known, np.int64), unknown

    def _id_scores(self, clicks: np.ndarray) -> Optional[np.ndarray]:
        """Sum of the clicked items' ID rows (zeros for items the ID part does not know)."""
        if self.id_matrix is None or not len(clicks):
            return None
        n_id = self.id_matrix.shape[0]
        rows = clicks[clicks < n_id]
        out = np.zeros(self.n_items, np.float32)
        if len(rows):
            out[:n_id] = self.id_matrix[rows].sum(axis=0)
        return out

    def recommend(self, clicked_items: Iterable = (), query_text: Union[str, Query, None] = None,
                  country: Optional[str] = None, k: int = 10, exclude: Iterable = ()) -> pd.DataFrame:
        """The top ``k`` items for a customer's clicks (item ids, in order) and/or free-text query.

        Returns a DataFrame with columns ``item_id, text, score, reason``; ``attrs`` hold ``notes``
        (what was ignored or truncated), ``unknown_items`` and ``fallback`` (``None``, ``"country"``
        or ``"global"``). Clicked items and ``exclude`` are never recommended. A :class:`Query`
        from :meth:`encode_query` may be passed as ``query_text`` (no encoder call).

        The numpy work runs on ``blas_threads`` BLAS threads (default 1): one request's
        matrix-vector product is too small to gain from threads, and on a busy machine threads that
        wait for each other turn a fraction of a millisecond into tens of milliseconds.
        """
        if isinstance(query_text, str) and query_text.strip():
            query_text = self.encode_query(query_text)   # the encoder: TensorFlow's own thread pool
        with blas_limit(self.blas_threads):
            return self._recommend(clicked_items, query_text, country, k, exclude)

    def _recommend(self, clicked_items, query_text, country, k, exclude) -> pd.DataFrame:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if isinstance(clicked_items, (str, bytes)):
            clicked_items = [clicked_items]
        notes = []
        clicks, unknown = self.positions(clicked_items)
        if unknown:
            notes.append(f"ignored {len(unknown)} unknown item id(s): {', '.join(unknown[:5])}")
        query = None
        if isinstance(query_text, Query):
            query = query_text
        elif query_text is not None:
            if str(query_text).strip():
                query = self.encode_query(query_text)
            else:
                notes.append("the query is empty: ignored")
        if query is not None and query.truncated:
            notes.append(f"the query is longer than {self.query_max_len} tokens: truncated")
        banned, _ = self.positions(exclude if not isinstance(exclude, (str, bytes)) else [exclude])
        banned = np.concatenate([clicks, banned]).astype(np.int64)

        if not len(clicks) and query is None:
            scores, fallback, label = self._popularity(country, notes)
            top = _top(scores, banned, k)
            reasons = [label] * len(top)
            return self._frame(top, scores[top], reasons, notes, unknown, fallback)

        vectors = [self.index[clicks]] if len(clicks) else []
        if query is not None:
            vectors.append(query.vector[None, :])
        stacked = np.vstack(vectors)
        raw = stacked.mean(axis=0)
        norm = max(float(np.linalg.norm(raw)), 1e-12)
        user = raw / norm
        w, beta = self.recipe.w_text, self.recipe.beta
        scores = w * (self.index @ user)
        id_scores = self._id_scores(clicks)
        if id_scores is not None:
            scores += id_scores
        if beta:
            scores += beta * self.is_new
        top = _top(scores, banned, k)
        reasons = self._reasons(top, clicks, query, len(stacked) * norm)
        return self._frame(top, scores[top], reasons, notes, unknown, None)

    def _popularity(self, country, notes):
        idx = self._country.get(country) if country is not None else None
        if idx is not None:
            return self.country_popularity[idx] + self.country_backoff * self.popularity, "country", f"popular in {country}"
        if country is not None:
            notes.append(f"no training customers from {country!r}: global popularity")
        return self.popularity.copy(), "global", "popular overall"

    def _reasons(self, top, clicks, query, denom) -> list:
        """For each recommended item, the click or query word that contributed most to its score."""
        w = self.recipe.w_text
        items = self.index[top]                                    # (k, d)
        labels, parts = [], []
        if len(clicks):
            text_part = w * (self.index[clicks] @ items.T) / denom   # (clicks, k)
            id_part = np.zeros_like(text_part)
            if self.id_matrix is not None:
                n_id = self.id_matrix.shape[0]
                known_rows = clicks < n_id
                known_cols = top < n_id
                sub = self.id_matrix[np.ix_(clicks[known_rows], top[known_cols])]
                id_part[np.ix_(known_rows, known_cols)] = sub
            parts.append(text_part + id_part)
            for j, c in enumerate(clicks):
                labels.append((c, id_part[j], text_part[j]))
        if query is not None and len(query.words):
            parts.append(w * (query.word_parts @ items.T) / denom)   # (words, k)
            labels += [("word", word) for word in query.words]
        if not parts:
            return ["" for _ in top]
        contrib = np.vstack(parts)                                  # (sources, k)
        best = contrib.argmax(axis=0)
        out = []
        for col, src in enumerate(best):
            label = labels[src]
            if label[0] == "word":
                reason = f'searched "{label[1]}"'
            else:
                c, id_row, text_row = label
                kind = "bought with" if id_row[col] > text_row[col] else "similar to"
                reason = f'{kind} "{_short(self.texts[c])}"'
            if self.is_new[top[col]] and self.recipe.beta > 0:
                reason += " · new product"
            out.append(reason)
        return out

    def _frame(self, top, scores, reasons, notes, unknown, fallback) -> pd.DataFrame:
        frame = pd.DataFrame({
            "item_id": [self.item_ids[i] for i in top],
            "text": [self.texts[i] for i in top],
            "score": np.asarray(scores, np.float32),
            "reason": reasons,
        }, columns=COLUMNS)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="rank")
        frame.attrs.update(notes=list(notes), unknown_items=list(unknown), fallback=fallback)
        return frame

    # -- batch scoring -----------------------------------------------------------------------------
    def score(self, batch) -> np.ndarray:
        """Scores of every item for a :class:`~coldstart.evaluate.Batch` of click contexts (catalog
        positions), same recipe as :meth:`recommend`: usable by :func:`coldstart.evaluate.evaluate`.
        A case with no context gets its country's popularity (else global)."""
        lens = np.array([len(c) for c in batch.context])
        ctx = batch.context_matrix(self.n_items, weights="mean")
        users = np.asarray(ctx @ self.index)
        users /= np.maximum(np.linalg.norm(users, axis=1, keepdims=True), 1e-12)
        scores = self.recipe.w_text * (users @ self.index.T)
        if self.id_matrix is not None:
            n_id = self.id_matrix.shape[0]
            clicked = batch.context_matrix(self.n_items, weights="uniform")[:, :n_id]   # x B: the sum of rows
            scores[:, :n_id] += np.asarray(clicked @ self.id_matrix)
        if self.recipe.beta:
            scores += self.recipe.beta * self.is_new
        for row in np.flatnonzero(lens == 0):
            scores[row] = self._popularity(batch.country[row], [])[0]
        return scores.astype(np.float32)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, folder) -> Path:
        """Write everything to ``folder`` (replaced atomically: the old one stays until the new one is
        complete). Layout: ``encoder/`` (weights + tokenizer), ``index.npy``, ``id_matrix.npy``,
        ``catalog.parquet``, ``popularity.npz``, ``serving.json`` (recipe, sizes, versions)."""
        folder = Path(folder)
        tmp = make_temp_dir(folder)
        try:
            self.encoder.save_pretrained(str(tmp / "encoder"))
            self.tokenizer.save_pretrained(str(tmp / "encoder"))
            np.save(tmp / "index.npy", self.index)
            if self.id_matrix is not None:
                np.save(tmp / "id_matrix.npy", self.id_matrix)
            pd.DataFrame({"item_id": self.item_ids, "text": self.texts, "is_new": self.is_new,
                          "popularity": self.popularity}).to_parquet(tmp / "catalog.parquet", index=False)
            np.savez(tmp / "popularity.npz", country=self.country_popularity)
            meta = {
                "format": FORMAT_VERSION,
                "recipe": dataclasses.asdict(self.recipe),
                "countries": self.countries,
                "country_backoff": self.country_backoff,
                "max_len": self.max_len,
                "query_max_len": self.query_max_len,
                "n_items": self.n_items,
                "index_dim": int(self.index.shape[1]),
                "source": self.source,
                "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "versions": versions(),
            }
            (tmp / "serving.json").write_text(json.dumps(meta, indent=1))
            swap_in_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def load(cls, folder) -> "Recommender":
        """Read a folder written by :meth:`save` (no training data needed)."""
        folder = Path(folder)
        meta_file = folder / "serving.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{folder} is not a saved recommender (no serving.json): write one with Recommender.save")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{folder} has format {meta.get('format')}, this coldstart reads {FORMAT_VERSION}: save it again")
        from .._internal.tf import import_tensorflow, quiet_transformers

        import_tensorflow()
        quiet_transformers()
        from transformers import AutoTokenizer, TFAutoModel

        tokenizer = AutoTokenizer.from_pretrained(str(folder / "encoder"))
        encoder = TFAutoModel.from_pretrained(str(folder / "encoder"))
        catalog = pd.read_parquet(folder / "catalog.parquet")
        id_file = folder / "id_matrix.npy"
        with np.load(folder / "popularity.npz") as pop:
            country_pop = pop["country"]
        rec = cls(tokenizer, encoder, catalog["item_id"].tolist(), catalog["text"].tolist(), np.load(folder / "index.npy"),
                  is_new=catalog["is_new"].to_numpy(), popularity=catalog["popularity"].to_numpy(),
                  countries=meta["countries"], country_popularity=country_pop,
                  id_matrix=np.load(id_file) if id_file.exists() else None, recipe=Recipe(**meta["recipe"]),
                  max_len=meta["max_len"], query_max_len=meta["query_max_len"], source=meta.get("source", ""),
                  country_backoff=meta.get("country_backoff", 0.1))
        rec.saved_versions = meta.get("versions", {})
        return rec.warm_up()


# -- a customer's visit --------------------------------------------------------------------------------
class Session:
    """One customer's visit: a query (optional) and a growing list of clicks.

    Each :meth:`search` costs one encoder call; each :meth:`click` reuses the encoded query, so it is
    numpy only. Every step's list is in :attr:`current`; :attr:`timings` holds ``(action, ms)``.
    """

    def __init__(self, recommender: Recommender, country: Optional[str] = None, k: int = 10):
        self.rec, self.country, self.k = recommender, country, k
        self.clicks, self.query, self.timings = [], None, []
        self.current = self._run("start")

    def _run(self, action) -> pd.DataFrame:
        start = time.perf_counter()
        out = self.rec.recommend(self.clicks, query_text=self.query, country=self.country, k=self.k)
        self.timings.append((action, 1000 * (time.perf_counter() - start)))
        self.current = out
        return out

    def search(self, text: str) -> pd.DataFrame:
        """Set (or with an empty text, clear) the query and recompute the list."""
        start = time.perf_counter()
        self.query = self.rec.encode_query(text) if text and str(text).strip() else None
        out = self._run("search")
        self.timings[-1] = ("search", 1000 * (time.perf_counter() - start))
        return out

    def click(self, item_id) -> pd.DataFrame:
        """Add a click and recompute the list (no encoder call)."""
        self.clicks.append(str(item_id))
        return self._run("click")


class Demo:
    """An ipywidgets front end on a :class:`Session`: a search box and the list as clickable buttons.

    :meth:`type_query` and :meth:`click` do exactly what typing and clicking do, so a notebook run
    without a person (nbval, the headless course run) can play a scripted visit through the same code.
    """

    def __init__(self, recommender: Recommender, country: Optional[str] = None, k: int = 10):
        import ipywidgets as W

        self.session = Session(recommender, country=country, k=k)
        self.search_box = W.Text(placeholder="what are you looking for? (Enter)", description="search",
                                 continuous_update=False, layout=W.Layout(width="60%"))
        self._typing = False
        self.search_box.observe(self._on_search, names="value")
        self.status = W.HTML()
        self.items = W.VBox()
        self.widget = W.VBox([self.search_box, self.status, self.items])
        self._refresh()

    def _refresh(self):
        import html

        import ipywidgets as W

        buttons = []
        for rank, row in self.session.current.iterrows():
            b = W.Button(description=f"{rank}. {_short(row.text, 40)}", tooltip=row.reason,
                         layout=W.Layout(width="60%"))
            b.on_click(lambda _b, item=row.item_id: self.click(item))
            buttons.append(W.HBox([b, W.HTML(f"<small>{html.escape(row.reason)}</small>")]))
        self.items.children = buttons
        action, ms = self.session.timings[-1]
        clicked = ", ".join(_short(self.session.rec.texts[self.session.rec._pos[i]], 30)
                            for i in self.session.clicks if i in self.session.rec._pos)
        self.status.value = html.escape(f"{action}: {ms:.1f} ms · clicked: {clicked or 'nothing yet'}")

    def _on_search(self, change):
        if not self._typing:   # a person typed and pressed Enter
            self.type_query(change["new"])

    def type_query(self, text: str) -> pd.DataFrame:
        self._typing = True
        try:
            self.search_box.value = text
        finally:
            self._typing = False
        out = self.session.search(text)
        self._refresh()
        return out

    def click(self, item_id) -> pd.DataFrame:
        out = self.session.click(item_id)
        self._refresh()
        return out

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def demo_widget(recommender: Recommender, country: Optional[str] = None, k: int = 10) -> Demo:
    """The interactive onboarding demo (see :class:`Demo`); display it in a notebook."""
    return Demo(recommender, country=country, k=k)


# -- building the course's recommender ----------------------------------------------------------------
def checkpoint_folder(profile=None) -> Path:
    """Where notebook 03 saves the fine-tuned two-tower body: ``runs/<profile>/checkpoints/two-tower``."""
    from ..config import runs_dir

    return runs_dir(profile) / "checkpoints" / "two-tower"


def for_profile(split, profile=None, progress: Optional[bool] = None, zero_shot_recipe: Optional[Recipe] = None):
    """The course's recommender for a split: notebook 03's fine-tuned two-tower and its recipe
    (``runs/<profile>/retriever.json``) when the checkpoint exists, else the profile's pretrained
    encoder zero-shot with ``zero_shot_recipe`` (default: text only). Returns ``(recommender, message)``.
    """
    from ..config import get_profile, runs_dir, shown

    profile = profile if hasattr(profile, "model_name") else get_profile(profile)
    ckpt = checkpoint_folder(profile.name)
    if (ckpt / "config.json").is_file():
        recipe_file = runs_dir(profile.name) / "retriever.json"
        recipe = read_recipe(recipe_file)
        rec = Recommender.from_split(split, str(ckpt), recipe=recipe, max_len=profile.max_len,
                                     batch_size=profile.encode_batch_size, progress=progress, source=shown(ckpt))
        how = (f"its recipe from {shown(recipe_file)}" if recipe else
               f"no {shown(recipe_file)}, so the default recipe (text only, w_text=1, beta=0)")
        return rec, f"fine-tuned two-tower from {shown(ckpt)}, {how}: {rec.recipe}"
    rec = Recommender.from_split(split, profile.model_name, recipe=zero_shot_recipe, max_len=profile.max_len,
                                 batch_size=profile.encode_batch_size, progress=progress)
    return rec, (f"no fine-tuned checkpoint at {shown(ckpt)} (run notebook 03 first to use it): "
                 f"{profile.model_name.split('/')[-1]} zero-shot, {rec.recipe}")


def encoded_context_recommender(rec: Recommender, name: str = "encoded context"):
    """Notebook 03's way to build the user vector, on the same encoder, index and recipe: the clicked
    items' texts are joined into one text and encoded (one encoder call per context), instead of
    averaging their index vectors. For comparing the two on the protocol (:func:`coldstart.evaluate.evaluate`)."""
    from ..models.bert import TextIDRecommender

    class _IDPart:
        def score(self, batch):
            n_id = rec.id_matrix.shape[0]
            out = np.zeros((len(batch), rec.n_items), np.float32)
            clicked = batch.context_matrix(rec.n_items, weights="uniform")[:, :n_id]
            out[:, :n_id] = np.asarray(clicked @ rec.id_matrix)
            return out

    return TextIDRecommender(rec.tokenizer, rec.encoder, rec.texts, rec.index,
                             id_part=None if rec.id_matrix is None else _IDPart(), w_text=rec.recipe.w_text,
                             beta=rec.recipe.beta, is_new=rec.is_new, max_len=rec.query_max_len, name=name)


# -- latency ------------------------------------------------------------------------------------------
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
    from ..evaluation.harness import Batch

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

    seg3 = split.segment("k=3").sample(batch_users, seed=seed)
    batch = Batch(context=list(seg3.context), country=seg3.country, date=seg3.date)

    def run_batches():
        for lo in range(0, len(batch), batch_size):
            sub = Batch(batch.context[lo:lo + batch_size], batch.country[lo:lo + batch_size], batch.date[lo:lo + batch_size])
            scores = rec.score(sub)
            for row, ctx in enumerate(sub.context):
                scores[row, ctx] = -np.inf
            np.argpartition(-scores, k, axis=1)[:, :k]

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


# -- helpers ------------------------------------------------------------------------------------------
_BLAS = []


def blas_limit(threads: Optional[int]):
    """A context in which numpy's BLAS uses at most ``threads`` threads (``None``: no limit).

    Uses ``threadpoolctl`` (installed with scikit-learn); without it, a no-op."""
    if threads is None:
        return contextlib.nullcontext()
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController().select(user_api="blas"))
        except Exception:  # pragma: no cover - threadpoolctl missing or unable to find the library
            _BLAS.append(None)
    return contextlib.nullcontext() if _BLAS[0] is None else _BLAS[0].limit(limits=threads)


def versions() -> dict:
    """Library versions recorded with a saved recommender."""
    from .. import __version__
    from .._internal.versions import installed_versions

    out = {k: v for k, v in installed_versions(("tensorflow", "tf-keras", "transformers", "numpy", "pandas")).items()}
    out.update(coldstart=__version__, python=platform.python_version())
    return out


def _resolve_encoder(encoder, tokenizer):
    """``(tokenizer, TF encoder body, description)`` from a model, a TwoTower, a folder or a name."""
    from ..models.encoders import load_encoder, resolve_model

    if encoder is None or isinstance(encoder, (str, os.PathLike)):
        name = None if encoder is None else str(encoder)
        where = resolve_model(name)
        folder = Path(where)
        if tokenizer is None and folder.is_dir() and not (folder / "tokenizer_config.json").is_file():
            # a checkpoint saved without its tokenizer: use the base model's (same vocabulary)
            from ..config import get_profile

            tokenizer, _ = load_encoder(get_profile().model_name)
            from transformers import TFAutoModel

            return tokenizer, TFAutoModel.from_pretrained(where), str(encoder)
        tok, model = load_encoder(name)
        return tokenizer or tok, model, str(encoder) if encoder is not None else "pretrained"
    body = getattr(encoder, "encoder", encoder)   # a TwoTower: its shared BERT body
    if tokenizer is None:
        name = getattr(getattr(body, "config", None), "_name_or_path", None)
        tokenizer, _ = load_encoder(name or None)
    return tokenizer, body, type(encoder).__name__


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


def _top(scores: np.ndarray, banned: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best scores, best first, skipping ``banned`` (ties: lower position first)."""
    scores = scores.astype(np.float32, copy=True)
    if len(banned):
        scores[banned] = -np.inf
    allowed = len(scores) - len(np.unique(banned))
    k = min(k, allowed)
    if k <= 0:
        return np.zeros(0, np.int64)
    cand = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = np.lexsort((cand, -scores[cand]))
    return cand[order][:k]


def _short(text: str, n: int = 48) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


