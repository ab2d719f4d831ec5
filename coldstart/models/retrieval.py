"""The course's retrieval recipe, written once for any text scorer, and the list policy for new products.

:class:`Retriever` scores the whole catalog for a batch of cases as

    score(u, i) = ID(u, i) + w_text * text(u, i) + beta * [i is new]

* ``text`` is any *text scorer*: an object whose ``score(cases)`` gives a (cases x items) similarity
  of the context's text to each item's, ``-inf`` where it has nothing to say. The course has two:
  :class:`~coldstart.models.baselines.TextSimilarity` (the context's mean item vector: TF-IDF, or a
  language model's vectors zero-shot) and :class:`EncodedContextSimilarity` (the context written as
  one text and encoded by the model's encoder, as notebook 03's fine-tuned two-tower does).
* ``ID`` is an optional *ID part* fitted on the training purchases, e.g.
  :class:`~coldstart.models.baselines.ItemRegression` or
  :class:`~coldstart.models.baselines.ItemKNN`; it knows only items bought before the cutoff.
* ``[new]`` marks items nobody bought before the cutoff (:attr:`ColdStartSplit.new_items
  <coldstart.data.protocol.ColdStartSplit.new_items>`): the ID part cannot score them, so without
  ``beta`` they can win only on text.

:func:`recipe_scores` is the formula itself, for callers that hold the parts already (the serving
recommender's single-customer path). :class:`Recipe` holds the weights notebook 03 chooses, and
:class:`NewProductSlots` is the other way to show new products: a list policy over any recommender.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np

from .._internal.io import write_text_atomic
from ..data.text import context_text
from .encoders import encode


def recipe_scores(text: np.ndarray, w_text: float = 1.0, beta: float = 0.0, is_new: Optional[np.ndarray] = None,
                  id_scores: Optional[np.ndarray] = None) -> np.ndarray:
    """``w_text * text + beta * is_new + id_scores`` (the last two when given), in that order."""
    scores = w_text * text
    if beta:
        scores = scores + beta * is_new
    if id_scores is not None:
        scores = scores + id_scores
    return scores


class Retriever:
    """score = ID part + ``w_text`` x text similarity + ``beta`` x [item is new] (see the module docstring).

    ``text``: a text scorer; ``id_part``: a recommender of the training purchases, or ``None`` (the
    text alone); ``is_new``: per catalog item, 1 for items without training purchases (needed when
    ``beta`` is not 0). ``no_text`` says what a case the text scorer has nothing to say about (a row
    of ``-inf``, e.g. a context of unknown items) becomes: ``"miss"``, a row of ``-inf`` whatever the
    ID part says (the evaluation counts the user as a miss), or ``"zero"``, no text contribution (the
    ID part alone ranks).
    """

    def __init__(self, text, id_part=None, w_text: float = 1.0, beta: float = 0.0, is_new=None,
                 no_text: str = "miss", name: str = "retriever"):
        if no_text not in ("miss", "zero"):
            raise ValueError(f"no_text must be 'miss' or 'zero', got {no_text!r}")
        if beta and is_new is None:
            raise ValueError("a new-product weight beta needs is_new")
        self.text, self.id_part, self.w_text, self.beta = text, id_part, w_text, beta
        self.is_new = None if is_new is None else np.asarray(is_new, np.float32)
        self.no_text, self.name = no_text, name

    def score(self, cases) -> np.ndarray:
        text = self.text.score(cases)
        if self.no_text == "zero":
            text = np.nan_to_num(text, neginf=0.0)
        id_scores = None if self.id_part is None else self.id_part.score(cases)
        return recipe_scores(text, self.w_text, self.beta, self.is_new, id_scores).astype(np.float32)


class EncodedContextSimilarity:
    """A text scorer: the context written as one text (:func:`~coldstart.data.text.context_text`),
    encoded by ``encoder``, and its cosine with every item's vector (``item_vectors``: the same
    encoder's L2-normalised item embeddings, e.g. from :meth:`of_catalog`).

    A context with no item (nothing to encode) gets a row of ``-inf``. Encoded contexts are kept in
    :attr:`contexts` (``{context key: vector}``) and encoded only once; pass the same dict to several
    scorers of one encoder to share them. ``context_len`` caps a context's tokens. ``progress`` is
    the progress line of every encoding call (``None``: the course's default, ``False``: silent), so a
    loop that scores many times can stay quiet.
    """

    desc = "encoding contexts"

    def __init__(self, tokenizer, encoder, texts, item_vectors, context_len: int = 64, batch_size: int = 128,
                 contexts: Optional[dict] = None, name: str = "two-tower-text", progress: Optional[bool] = None):
        self.tokenizer, self.encoder, self.texts = tokenizer, encoder, np.asarray(list(texts), dtype=object)
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self.context_len, self.batch_size, self.name = context_len, batch_size, name
        self.contexts = {} if contexts is None else contexts
        self.progress = progress

    @classmethod
    def of_catalog(cls, tokenizer, encoder, texts, max_len: int = 32, batch_size: int = 128,
                   progress: Optional[bool] = None, **options):
        """The scorer over a catalog's ``texts``, encoded now (``max_len`` tokens per item, in batches
        of ``batch_size``); ``progress`` applies to the catalog and to the contexts encoded later;
        ``options`` go to the constructor."""
        vectors = encode(texts, tokenizer, encoder, max_len=max_len, batch_size=batch_size, progress=progress,
                         desc="encoding the catalog")
        return cls(tokenizer, encoder, texts, vectors, progress=progress, **options)

    def context_key(self, context) -> tuple:
        """How a context is kept in :attr:`contexts`: its items' catalog positions."""
        return tuple(int(i) for i in context)

    def key_text(self, key) -> str:
        """The text a kept context is encoded from."""
        return context_text(self.texts[list(key)])

    def encode_texts(self, texts) -> np.ndarray:
        """Context texts to normalised vectors with this scorer's encoder (a subclass may encode
        another way: :class:`coldstart.models.keras3.KerasContextSimilarity`)."""
        return encode(texts, self.tokenizer, self.encoder, max_len=self.context_len, batch_size=self.batch_size,
                      progress=self.progress, desc=self.desc)

    def context_vectors(self, contexts) -> np.ndarray:
        """The encoded contexts, one row each (contexts not seen before are encoded in one call)."""
        keys = [self.context_key(c) for c in contexts]
        todo = [k for k in dict.fromkeys(keys) if k not in self.contexts]
        if todo:
            self.contexts.update(zip(todo, self.encode_texts([self.key_text(k) for k in todo])))
        return np.stack([self.contexts[k] for k in keys]) if keys else np.zeros((0, self.item_vectors.shape[1]))

    def score(self, cases) -> np.ndarray:
        known = np.array([len(c) > 0 for c in cases.context], dtype=bool)
        scores = np.full((len(cases.context), len(self.texts)), -np.inf, dtype=np.float32)
        if known.any():
            scores[known] = self.context_vectors([c for c, ok in zip(cases.context, known) if ok]) @ self.item_vectors.T
        return scores


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The choices of :class:`Retriever`'s recipe, as notebook 03 makes them on the validation split
    and the serving recommender reads them (``runs/<profile>/retriever.json``).

    ``w_text`` and ``beta`` weigh the text similarity and the new-product term; ``lam`` is the ID
    part's ridge strength (``None``: no ID part); ``dropout`` and ``customers`` are the rest of its
    fit (:meth:`~coldstart.models.baselines.ItemRegression.for_split`); ``softness`` is how the text
    part combines several clicks (:class:`~coldstart.models.baselines.TextSimilarity`: ``None``, their
    average); ``price_band``: the item texts the text model reads end with their price band
    (:func:`~coldstart.data.text.with_price_band`), so serving must write them the same way. Defaults:
    text only, no bias, the average, the texts alone.
    """

    w_text: float = 1.0
    beta: float = 0.0
    lam: Optional[float] = None
    dropout: float = 0.0
    customers: bool = False
    softness: Optional[float] = None
    price_band: bool = False

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
        out = {}
        for k, v in values.items():
            if k in ("customers", "price_band"):
                if not isinstance(v, (bool, np.bool_)) and v not in (0, 1):
                    raise ValueError(f"recipe key {k!r} must be true or false, not {v!r}")
                out[k] = bool(v)
            else:
                out[k] = None if v is None else float(v)
        return cls(**out)


    @classmethod
    def read(cls, path) -> Optional["Recipe"]:
        """The recipe in a ``retriever.json`` written by :meth:`save` (``None`` if the file is missing).

        The file may hold other keys (notes, settings); only ``w_text`` (or ``w``), ``beta``, ``lam``,
        ``dropout``, ``customers``, ``softness`` and ``price_band`` are read, at the top level or under ``"recipe"``.
        """
        path = Path(path)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        data = data.get("recipe", data)
        if "w" in data and "w_text" not in data:
            data = {**data, "w_text": data["w"]}
        return cls.from_dict({k: data[k] for k in ("w_text", "beta", "lam", "dropout", "customers", "softness",
                                                   "price_band") if k in data})

    def save(self, path, **notes) -> Path:
        """Write the recipe to ``path`` as JSON (atomically), with ``notes`` (other settings worth
        keeping beside it) as further top-level keys."""
        path = Path(path)
        write_text_atomic(json.dumps({**dataclasses.asdict(self), **notes}, indent=1), path)
        return path


class NewProductSlots:
    """A list policy: the first ``first`` places by relevance (``base``), the next ``n`` for the new
    products (``is_new``) whose text is closest to the context (``text``), the rest in ``base``'s order.

    A new product cannot earn purchases before it is shown, and one blended score would pay for its
    exposure with relevance at the top of the list. Context items are never placed. Taught verbatim
    in notebook 03.
    """

    def __init__(self, base, text, is_new, first: int = 10, n: int = 10, name: str = "two-tower+id+new-slots"):
        self.base, self.text, self.first, self.n, self.name = base, text, first, n, name
        self.is_new = np.asarray(is_new, bool)

    def score(self, batch) -> np.ndarray:
        base, text = np.array(self.base.score(batch), np.float64), np.array(self.text.score(batch), np.float64)
        out = np.full(base.shape, -np.inf, np.float32)   # a row the base cannot score stays a miss
        for r, ctx in enumerate(batch.context):
            base[r, ctx] = -np.inf                        # context items: never recommended again
            if not np.isfinite(base[r]).any():
                continue
            order = np.argsort(-base[r], kind="stable")
            top, rest = order[: self.first], order[self.first :]
            text[r, top] = text[r, ctx] = text[r, ~self.is_new] = -np.inf   # placed, clicked or not new
            picks = np.argsort(-text[r], kind="stable")[: self.n]
            picks = picks[np.isfinite(text[r, picks])]
            out[r, np.concatenate([top, picks, rest[~np.isin(rest, picks)]])] = -np.arange(len(order))
            out[r, ctx] = -np.inf
        return out
