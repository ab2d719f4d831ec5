"""Serving the course's retriever to a new customer, click by click (notebook 07).

A :class:`Recommender` is everything a shop needs at serving time, and nothing of the training data:

* the **encoder** (a fine-tuned two-tower body from notebook 03, or the pretrained one, zero-shot)
  and its tokenizer, used only to encode a free-text query and new products;
* the **item index**: every catalog item's L2-normalised text vector, computed once (``index``);
* the **ID part** (optional): the item-to-item matrix of :class:`coldstart.models.baselines.ItemRegression`;
* the **catalog** (item ids, texts and prices), which items are new (no purchases before the cutoff),
  and the **popularity** of each item overall and per country, for a customer we know nothing about.
  When the recipe says the text model reads price bands (``recipe.price_band``), the index holds the
  vectors of the texts with their price band (:meth:`Recommender.index_texts`); lists show the texts alone.

Scoring recipe: the course's retrieval recipe (:mod:`coldstart.models.retrieval`, the one notebook 03
tunes; ``runs/<profile>/retriever.json`` holds its choices)::

    score(u, i) = ID(u, i) + w_text * cos(u, v_i) + beta * [i is new]

The user vector ``u`` is the normalised mean of the clicked items' index vectors and, when the
customer typed something, the query's vector (:mod:`coldstart.serving.query`). So a **click** costs a
few numpy operations over the index (no encoder call); a **query** costs one encoder call on a short
text. ``ID(u, i)`` is :meth:`ItemRegression.score <coldstart.models.baselines.ItemRegression.score>`:
the sum of the clicked items' rows of the ID matrix; items added after training have no row or
column in it and score 0 there.

Every list comes with a **reason** per item: the clicked item (``bought with "..."`` when its ID
part contributes most, ``similar to "..."`` when its text does) or the query word (``searched
"..."``) that contributed most to that item's score. The query's share is split exactly over its
words: the query vector is a mean of token vectors, so each word's contribution is the dot product
of its tokens' share of that mean with the item vector. With no usable context the list is the
country's popularity (``popular in France``), else global popularity (``popular overall``).

Defined behaviour for bad input (tested in ``tests/test_serving.py``):

* unknown item ids are ignored and listed in ``result.attrs["unknown_items"]``; ``None`` means no clicks;
* an empty or blank query, or one of only invisible characters, is ignored (a note says so);
* a query longer than ``query_max_len`` tokens is truncated (a note says so); only its first
  ``query_max_len * 128`` characters are read, so a huge text costs what a long one does;
* concurrent calls from several threads return what serial calls return (the tokenizer is used
  by one thread at a time; BLAS's thread limit is shared, see :func:`coldstart._internal.blas.blas_limit`);
* :meth:`Recommender.add_items` while other threads recommend: each request works on the whole
  catalog before the add or the whole catalog after it, never a mix;
* non-ASCII text is encoded like any other (uncased BERT vocabularies strip accents);
* no clicks and no query: country popularity, then global popularity (``attrs["fallback"]``).

Persistence: :meth:`Recommender.save` writes one folder (encoder weights and tokenizer, index,
ID matrix, catalog, popularity, versions) atomically; :meth:`Recommender.load` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .._internal.blas import blas_limit
from .._internal.io import atomic_dir
from .._internal.versions import library_versions
from ..config import get_profile, runs_dir, shown
from ..data.protocol import Cases
from ..data.text import price_band, with_price_band
from ..evaluation.metrics import topk_items
from ..models.baselines import CountryPopularity, ItemRegression, TextSimilarity
from ..models.encoders import encode, load_encoder, load_tokenizer, resolve_model
from ..models.retrieval import EncodedContextSimilarity, Recipe, Retriever, recipe_scores
from .query import Query, encode_query, visible

FORMAT_VERSION = 2   # 2: the catalog's prices and the recipe's price_band
READS_FORMATS = (1, 2)
# what save writes: the only entries a folder it replaces may hold (it never deletes anything else)
# the libraries whose versions decide how a saved folder's files are read (a load warns if they differ)
FILE_SHAPING = ("coldstart", "tensorflow", "tf-keras", "transformers", "numpy", "pandas", "pyarrow")
SAVED_NAMES = ("serving.json", "encoder", "index.npy", "id_matrix.npy", "catalog.parquet", "popularity.npz")
COLUMNS = ["item_id", "text", "score", "reason"]


class Recommender:
    """A new-user recommender over a precomputed item index (see the module docstring).

    Build one with :meth:`from_split` (or :func:`for_profile`), or read one with :meth:`load`.
    """

    def __init__(self, tokenizer, encoder, item_ids: Sequence[str], texts: Sequence[str], index: np.ndarray, *,
                 is_new=None, popularity=None, countries: Sequence[str] = (), country_popularity=None,
                 id_matrix=None, recipe: Recipe = Recipe(), max_len: int = 32, query_max_len: int = 64,
                 source: str = "", country_backoff: float = 0.1, blas_threads: Optional[int] = 1, prices=None):
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
        self.prices = _prices(prices, n, required=recipe.price_band)
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
        self._position = {item: i for i, item in enumerate(self.item_ids)}
        self._country = {c: i for i, c in enumerate(self.countries)}
        self.blas_threads = blas_threads
        self._tokenizer_lock = threading.Lock()   # one fast tokenizer is one Rust object: one caller at a time
        # add_items replaces the catalog's arrays together under _state_lock; readers copy the attributes
        # under it (_view), so a request sees the whole catalog before or after an add, never half of each.
        # _add_lock makes concurrent adds take turns, so two cannot pick the same new ids.
        self._state_lock = threading.Lock()
        self._add_lock = threading.Lock()

    def _view(self) -> "Recommender":
        """A shallow copy sharing every array and lock: the catalog as it is now, unchanged by a later
        :meth:`add_items` (which replaces arrays, never changes them in place)."""
        view = object.__new__(type(self))
        with self._state_lock:
            view.__dict__.update(self.__dict__)
        return view

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_split(cls, split, encoder=None, tokenizer=None, recipe: Optional[Recipe] = None, *,
                   max_len: int = 32, query_max_len: int = 64, batch_size: int = 128, source: str = "",
                   progress: Optional[bool] = None) -> "Recommender":
        """Build the recommender for a protocol split's catalog.

        ``encoder``: a ``TFAutoModel`` body, a :class:`~coldstart.models.bert.TwoTower` (its body is
        used), a folder saved with ``save_pretrained`` or a model name (default: the profile's model,
        zero-shot). ``tokenizer`` defaults to the one saved beside the encoder, else the model's.
        The catalog is encoded once (the index; each text with its price band when
        ``recipe.price_band``); popularity comes from ``split.train`` only; the ID part is fitted on
        the training baskets when ``recipe.lam`` is set.
        """
        recipe = recipe or Recipe()
        tokenizer, encoder, where = _resolve_encoder(encoder, tokenizer)
        texts = split.texts()
        index = encode(split.texts(price_band=recipe.price_band), tokenizer, encoder, max_len=max_len,
                       batch_size=batch_size, progress=progress, desc="encoding the catalog")
        pop = CountryPopularity(split)
        countries = sorted(pop.countries, key=pop.countries.get)
        id_matrix = None
        if recipe.lam is not None:
            id_matrix = ItemRegression.for_split(split, lam=recipe.lam, dropout=recipe.dropout,
                                                 customers=recipe.customers).B
        rec = cls(tokenizer, encoder, split.item_ids, texts, index, is_new=split.new_items, popularity=pop.glob,
                  countries=countries, country_popularity=pop.share, id_matrix=id_matrix, recipe=recipe,
                  max_len=max_len, query_max_len=query_max_len, source=source or where,
                  prices=split.catalog["median_price"].to_numpy())
        return rec.warm_up()

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def id_part(self) -> Optional[ItemRegression]:
        """The ID part over the current catalog (products added since training score 0), or ``None``."""
        return None if self.id_matrix is None else ItemRegression.from_matrix(self.id_matrix, self.n_items)

    def __repr__(self) -> str:
        id_part = "none" if self.id_matrix is None else f"{self.id_matrix.shape[0]} items"
        return (f"Recommender({self.n_items} items, {int(self.is_new.sum())} new, index {self.index.shape[1]}-d, "
                f"ID part: {id_part}, w_text={self.recipe.w_text}, beta={self.recipe.beta}, source={self.source!r})")

    # -- encoding ----------------------------------------------------------------------------------
    def index_texts(self) -> list:
        """The texts the index holds the vectors of: each item's text, followed by its price band when
        the recipe's text model reads them (``recipe.price_band``; no band where the price is unknown)."""
        view = self._view()   # texts and prices of one catalog, even while add_items runs
        return with_price_band(view.texts, view.prices) if view.recipe.price_band else list(view.texts)

    def encode_query(self, text: str) -> Query:
        """Encode a free-text query (one encoder call, :func:`~coldstart.serving.query.encode_query`).
        Longer than ``query_max_len`` tokens: truncated. Raises ``ValueError`` for an empty or blank
        text (:meth:`recommend` ignores those instead)."""
        return encode_query(text, self.tokenizer, self.encoder, max_len=self.query_max_len, lock=self._tokenizer_lock)

    def add_items(self, texts: Sequence[str], ids: Optional[Sequence[str]] = None, prices=None) -> list:
        """Put new products into the index now (they need a text, no purchases). Returns their ids.

        New products count as new (``beta`` applies), have no popularity and no ID part. One string
        is one product. ``ids`` default to the first free ``new-1``, ``new-2``, ... (never an id the
        catalog or ``ids`` already has). ``prices`` (pounds, one per text; ``None`` or NaN for an
        unknown one) are required when the recipe's text model reads price bands, since a product's
        vector depends on its band there. Raises ``ValueError`` (and changes nothing) for a text that
        is not a string or shows nothing, a repeated or existing id, a missing, negative or
        non-numeric price, or a length mismatch.

        Safe while other threads call :meth:`recommend` (or :meth:`score`, :meth:`save`): each of
        those works on the catalog before the add or after it, whole.
        """
        with self._add_lock:
            return self._add_items(texts, ids, prices)

    def _add_items(self, texts, ids, prices) -> list:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if isinstance(ids, str):
            ids = [ids]
        prices = _prices(prices, len(texts), required=self.recipe.price_band)
        not_text = [j for j, t in enumerate(texts) if not isinstance(t, str)]
        if not_text:
            raise ValueError(f"product texts must be strings: position(s) {not_text[:5]} hold "
                             f"{[texts[j] for j in not_text[:3]]!r}")
        if ids is None:
            ids, n = [], 0
            while len(ids) < len(texts):
                n += 1
                if f"new-{n}" not in self._position:
                    ids.append(f"new-{n}")
        ids = [str(i) for i in ids]
        if len(ids) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(ids)} ids")
        blank = [i for i, t in zip(ids, texts) if not visible(t).strip()]
        if blank:
            raise ValueError(f"products {blank} have an empty text: the index needs a text to place a product")
        taken = [i for i in ids if i in self._position]
        if taken or len(set(ids)) != len(ids):
            raise ValueError(f"ids already in the catalog or repeated: {taken or ids}")
        if not texts:
            return []
        read = with_price_band(texts, prices) if self.recipe.price_band else texts
        vectors = encode(read, self.tokenizer, self.encoder, max_len=self.max_len, progress=False,
                         lock=self._tokenizer_lock)
        m = len(texts)
        # new objects only (no +=, no update): a view taken before the swap keeps the old catalog whole
        new = dict(
            index=np.vstack([self.index, vectors]).astype(np.float32),
            item_ids=self.item_ids + ids,
            texts=self.texts + texts,
            prices=np.concatenate([self.prices, prices]),
            is_new=np.concatenate([self.is_new, np.ones(m, np.float32)]),
            popularity=np.concatenate([self.popularity, np.zeros(m, np.float32)]),
            country_popularity=np.hstack([self.country_popularity, np.zeros((len(self.countries), m), np.float32)]),
            _position={**self._position, **{item: len(self._position) + j for j, item in enumerate(ids)}},
        )
        with self._state_lock:
            self.__dict__.update(new)
        return ids

    def warm_up(self) -> "Recommender":
        """Run one query and one click, so the first customer does not pay for tracing the encoder's
        graph and for first-call allocations. Called by :meth:`from_split` and :meth:`load`."""
        self.recommend(self.item_ids[:1], query_text="warm up", k=1)
        return self

    # -- recommending ------------------------------------------------------------------------------
    def knows(self, item_id) -> bool:
        """True if ``item_id`` is in the catalog."""
        return str(item_id) in self._position

    def position(self, item_id) -> int:
        """The catalog position of ``item_id`` (its row in :attr:`index`); ``KeyError`` if unknown."""
        return self._position[str(item_id)]

    def positions(self, items: Iterable) -> tuple:
        """``(positions of known ids in click order, unknown ids)``; repeated clicks count once."""
        known, unknown, seen = [], [], set()
        for item in items:
            item = str(item)
            pos = self._position.get(item)
            if pos is None:
                unknown.append(item)
            elif pos not in seen:
                seen.add(pos)
                known.append(pos)
        return np.asarray(known, np.int64), unknown

    def _id_scores(self, clicks: np.ndarray) -> Optional[np.ndarray]:
        """The ID part's scores for one customer's clicks (``None`` without an ID part or clicks)."""
        if self.id_matrix is None or not len(clicks):
            return None
        one = Cases(context=[clicks], country=np.array([""], dtype=object),
                    date=np.array(["NaT"], dtype="datetime64[ns]"))
        return self.id_part.score(one)[0]

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
        view = self._view()   # one catalog for the whole request, whatever add_items does meanwhile
        if isinstance(query_text, str) and visible(query_text).strip():
            query_text = view.encode_query(query_text)   # the encoder: TensorFlow's own thread pool
        with blas_limit(view.blas_threads):
            return view._recommend(clicked_items, query_text, country, k, exclude)
    def _recommend(self, clicked_items, query_text, country, k, exclude) -> pd.DataFrame:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if clicked_items is None:
            clicked_items = ()
        elif isinstance(clicked_items, (str, bytes, int, np.integer)):
            clicked_items = [clicked_items]
        notes = []
        clicks, unknown = self.positions(clicked_items)
        if unknown:
            notes.append(f"ignored {len(unknown)} unknown item id(s): {', '.join(unknown[:5])}")
        query = None
        if isinstance(query_text, Query):
            query = query_text
        elif query_text is not None:
            if visible(query_text).strip():
                query = self.encode_query(query_text)
            elif str(query_text).strip():
                notes.append("the query has only invisible characters (controls, zero-width): ignored")
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
        t = self.recipe.softness
        if t is None:                         # the cosine with the average of the clicks (and the query)
            raw = stacked.mean(axis=0)
            norm = max(float(np.linalg.norm(raw)), 1e-12)
            text, denom = self.index @ (raw / norm), len(stacked) * norm
        else:                                 # a soft maximum over them, as TextSimilarity(softness=t)
            sims = (stacked @ self.index.T) / t
            top_sim = sims.max(axis=0)
            text, denom = t * (top_sim + np.log(np.exp(sims - top_sim).mean(axis=0))), 1.0
        scores = recipe_scores(text, self.recipe.w_text, self.recipe.beta, self.is_new, self._id_scores(clicks))
        top = _top(scores, banned, k)
        reasons = self._reasons(top, clicks, query, denom)
        return self._frame(top, scores[top], reasons, notes, unknown, None)

    def _popularity(self, country, notes):
        idx = self._country.get(country) if country is not None else None
        if idx is not None:
            scores = self.country_popularity[idx] + self.country_backoff * self.popularity
            return scores, "country", f"popular in {country}"
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
                reason = f'{kind} "{shorten(self.texts[c])}"'
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

    # -- batch scoring -----------------------------------------------------------------------------
    def score(self, cases: Cases) -> np.ndarray:
        """Scores of every item for a batch of click contexts (catalog positions), with the recipe of
        :meth:`recommend` (:class:`~coldstart.models.retrieval.Retriever` on the index): usable by
        :func:`coldstart.evaluation.evaluate`. A case with no context gets its country's popularity
        (else global)."""
        view = self._view()
        retriever = Retriever(TextSimilarity(view.index, softness=view.recipe.softness), id_part=view.id_part,
                              w_text=view.recipe.w_text,
                              beta=view.recipe.beta, is_new=view.is_new)
        scores = retriever.score(cases)
        for row in np.flatnonzero([len(c) == 0 for c in cases.context]):
            scores[row] = view._popularity(cases.country[row], [])[0]
        return scores

    # -- persistence -------------------------------------------------------------------------------
    def save(self, folder) -> Path:
        """Write everything to ``folder`` (replaced atomically: the old one stays until the new one is
        complete). Layout: ``encoder/`` (weights + tokenizer), ``index.npy``, ``id_matrix.npy``,
        ``catalog.parquet``, ``popularity.npz``, ``serving.json`` (recipe, sizes, versions)."""
        return self._view()._save(Path(folder))   # one catalog, even if add_items runs meanwhile

    def _save(self, folder: Path) -> Path:
        with atomic_dir(folder, "serving.json", SAVED_NAMES) as tmp:
            self.encoder.save_pretrained(str(tmp / "encoder"))
            with self._tokenizer_lock:   # serialising the Rust tokenizer borrows it like a query does
                self.tokenizer.save_pretrained(str(tmp / "encoder"))
            np.save(tmp / "index.npy", self.index)
            if self.id_matrix is not None:
                np.save(tmp / "id_matrix.npy", self.id_matrix)
            pd.DataFrame({"item_id": self.item_ids, "text": self.texts, "price": self.prices, "is_new": self.is_new,
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
                "versions": library_versions(),
            }
            (tmp / "serving.json").write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder) -> "Recommender":
        """Read a folder written by :meth:`save` (no training data needed).

        Only that folder is read: the encoder comes from ``folder/encoder`` with local files only and
        without running any code the folder names (:func:`~coldstart.models.encoders.load_encoder`).
        A folder with missing or unreadable parts raises ``ValueError`` ("damaged: save it again");
        one saved by other library versions loads with a ``UserWarning`` naming them.
        """
        folder = Path(folder).expanduser().resolve()
        meta_file = folder / "serving.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{folder} is not a saved recommender (no serving.json): "
                                    "write one with Recommender.save")
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, ValueError) as err:
            raise _damaged(folder, f"serving.json unreadable: {err}") from err
        if not isinstance(meta, dict) or meta.get("format") not in READS_FORMATS:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ValueError(f"{folder} has format {found}, this coldstart reads {FORMAT_VERSION}: save it again")
        if not (folder / "encoder" / "config.json").is_file():
            raise _damaged(folder, "no encoder/config.json")
        _warn_other_versions(folder, meta.get("versions"))
        tokenizer, encoder = load_encoder(str(folder / "encoder"))
        try:
            catalog = pd.read_parquet(folder / "catalog.parquet")
            id_file = folder / "id_matrix.npy"
            with np.load(folder / "popularity.npz") as pop:
                country_pop = pop["country"]
            rec = cls(tokenizer, encoder, catalog["item_id"].tolist(), catalog["text"].tolist(),
                      np.load(folder / "index.npy"),
                      is_new=catalog["is_new"].to_numpy(), popularity=catalog["popularity"].to_numpy(),
                      countries=meta["countries"], country_popularity=country_pop,
                      id_matrix=np.load(id_file) if id_file.exists() else None, recipe=Recipe(**meta["recipe"]),
                      max_len=meta["max_len"], query_max_len=meta["query_max_len"], source=meta.get("source", ""),
                      country_backoff=meta.get("country_backoff", 0.1),
                      prices=catalog["price"].to_numpy() if "price" in catalog else None)
        except (OSError, KeyError, TypeError, ValueError, IndexError) as err:
            raise _damaged(folder, f"{type(err).__name__}: {str(err).splitlines()[0][:120] if str(err) else ''}") \
                from err
        rec.saved_versions = meta.get("versions", {})
        return rec.warm_up()


def _damaged(folder: Path, why: str) -> ValueError:
    return ValueError(f"{folder} is a damaged saved recommender ({why}): save it again with Recommender.save")


def _warn_other_versions(folder: Path, saved) -> None:
    """Warn when ``folder`` was saved by other versions of the libraries that shape its files."""
    if not isinstance(saved, dict):
        return
    now = library_versions()
    differ = {k: (saved[k], now[k]) for k in FILE_SHAPING if k in saved and k in now and saved[k] != now[k]}
    if differ:
        listed = ", ".join(f"{k} {a} (now {b})" for k, (a, b) in differ.items())
        warnings.warn(f"{folder} was saved with {listed}: it may load or score differently; save it again "
                      "with these versions to be sure", UserWarning, stacklevel=3)


# -- building the course's recommender ----------------------------------------------------------------
def checkpoint_folder(profile=None) -> Path:
    """Where notebook 03 saves the fine-tuned two-tower body: ``runs/<profile>/checkpoints/two-tower``."""
    return runs_dir(profile) / "checkpoints" / "two-tower"


def for_profile(split, profile=None, progress: Optional[bool] = None, zero_shot_recipe: Optional[Recipe] = None):
    """The course's recommender for a split: notebook 03's fine-tuned two-tower and its recipe
    (``runs/<profile>/retriever.json``) when the checkpoint exists, else the profile's pretrained
    encoder zero-shot with ``zero_shot_recipe`` (default: text only). Returns ``(recommender, message)``.
    """
    profile = profile if hasattr(profile, "encoder") else get_profile(profile)
    model, ckpt = profile.encoder, checkpoint_folder(profile.name)
    if (ckpt / "config.json").is_file():
        recipe_file = runs_dir(profile.name) / "retriever.json"
        recipe = Recipe.read(recipe_file)
        rec = Recommender.from_split(split, str(ckpt), recipe=recipe, max_len=model.max_len,
                                     batch_size=model.batch_size, progress=progress, source=shown(ckpt))
        how = (f"its recipe from {shown(recipe_file)}" if recipe else
               f"no {shown(recipe_file)}, so the default recipe (text only, w_text=1, beta=0)")
        return rec, f"fine-tuned two-tower from {shown(ckpt)}, {how}: {rec.recipe}"
    rec = Recommender.from_split(split, model.model_name, recipe=zero_shot_recipe, max_len=model.max_len,
                                 batch_size=model.batch_size, progress=progress)
    return rec, (f"no fine-tuned checkpoint at {shown(ckpt)} (run notebook 03 first to use it): "
                 f"{model.model_name.split('/')[-1]} zero-shot, {rec.recipe}")


def encoded_context_recommender(rec: Recommender, name: str = "encoded context") -> Retriever:
    """Notebook 03's way to build the user vector, on the same encoder, index and recipe: the clicked
    items' texts are joined into one text and encoded (one encoder call per context), instead of
    averaging their index vectors. For comparing the two on the protocol (:func:`coldstart.evaluation.evaluate`)."""
    rec = rec._view()   # one catalog, even while add_items runs
    text = EncodedContextSimilarity(rec.tokenizer, rec.encoder, rec.index_texts(), rec.index,
                                    context_len=rec.query_max_len)
    return Retriever(text, id_part=rec.id_part, w_text=rec.recipe.w_text, beta=rec.recipe.beta, is_new=rec.is_new,
                     name=name)


# -- helpers ------------------------------------------------------------------------------------------
def _resolve_encoder(encoder, tokenizer):
    """``(tokenizer, TF encoder body, description)`` from a model, a TwoTower, a folder or a name."""
    if encoder is None or isinstance(encoder, (str, os.PathLike)):
        name = None if encoder is None else str(encoder)
        folder = Path(resolve_model(name))
        if tokenizer is None and folder.is_dir() and not (folder / "tokenizer_config.json").is_file():
            # a checkpoint saved without its tokenizer: use the base model's (same vocabulary)
            tokenizer = load_tokenizer(get_profile().encoder.model_name)
        tokenizer, model = load_encoder(name, tokenizer=tokenizer)
        return tokenizer, model, str(encoder) if encoder is not None else "pretrained"
    body = getattr(encoder, "encoder", encoder)   # a TwoTower: its shared BERT body
    if tokenizer is None:
        tokenizer = load_tokenizer(getattr(getattr(body, "config", None), "_name_or_path", None) or None)
    return tokenizer, body, type(encoder).__name__


def _prices(prices, n: int, required: bool) -> np.ndarray:
    """``n`` prices as floats (NaN: unknown), checked before anything changes: each one must be a number
    :func:`~coldstart.data.text.price_band` accepts (``None``, NaN or ``pd.NA`` for an unknown one)."""
    if prices is None:
        if required:
            raise ValueError("this recommender's text model reads each product's price band (recipe.price_band): "
                             "give prices=[...] in pounds, one per text (None for an unknown one)")
        return np.full(n, np.nan)
    prices = [prices] if np.isscalar(prices) or prices is pd.NA else list(prices)
    if len(prices) != n:
        raise ValueError(f"{n} texts but {len(prices)} prices")
    try:
        for p in prices:
            price_band(p)   # a negative, infinite or non-numeric price raises here, before anything changes
    except (TypeError, ValueError) as err:
        raise ValueError(f"prices must be numbers in pounds: {err}") from None
    return np.array([np.nan if p is None or p is pd.NA else float(p) for p in prices], np.float64)


def _top(scores: np.ndarray, banned: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best scores, best first, skipping ``banned`` (ties: lower position first,
    as every ranking of the course: :func:`~coldstart.evaluation.metrics.topk_items`)."""
    exclude = np.zeros((1, len(scores)), dtype=bool)
    exclude[0, banned] = True
    top = topk_items(scores[None, :], k, exclude=exclude)[0]
    return top[top >= 0]


def shorten(text: str, n: int = 48) -> str:
    """``text`` cut to ``n`` characters, an ellipsis marking the cut: how lists show a product."""
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"
