"""Data augmentation for scarce behaviour data: more (and more varied) training examples for the
two-tower retriever, made from the training rows and the catalog texts only.

Notebook 05 measures each augmentation against the unaugmented model under the same training budget.
All of them work on :class:`~coldstart.training.pairs.Examples` (pseudo new users: context items in click
order -> target items) and return :class:`Augmented` examples, an ``Examples`` that also records the
augmentation that made each example (``kind``) and, for the text-side augmentations, the context's
rewritten item texts (``texts``).

Augmentations (:data:`AUGMENTATIONS`)
-------------------------------------
Sequence augmentations of a customer's context (contrastive sequential recommendation uses the same
three, e.g. CL4SRec, Xie et al. 2022). They need a context of at least two items:

* ``crop`` -- keep a contiguous window of the context; the clicks cut off join the targets (the user
  did buy them).
* ``mask`` -- hide some clicks at random (at least one stays); the hidden ones join the targets.
* ``reorder`` -- shuffle a contiguous window of the clicks; targets unchanged.

New pseudo-users:

* ``sub_baskets`` -- a random sub-basket of a real training invoice becomes a pseudo-user: its first
  items (line order) are the context, the rest the targets. Contexts then also start from items that
  rarely come first in an invoice.
* ``synthetic`` -- interactions for items with few purchases (and, with ``include_cold``, none) from
  their nearest catalog neighbours by text: a real training invoice that holds a neighbour becomes a
  pseudo-user who bought the rare item (see :func:`synthetic_interactions` for the three modes).

Text-side augmentations of the context's item descriptions (item texts in the index stay as they are):

* ``word_dropout`` -- each word is dropped with probability ``p`` (at least one word stays).
* ``neighbour_swap`` -- some words are replaced by words of the item's nearest catalog neighbours
  by TF-IDF (:func:`text_neighbours`): "red retrospot cake stand" may become "red retrospot cake tin".

Groups (:data:`GROUPS`): ``sequence`` = crop + mask + reorder, ``text`` = word_dropout +
neighbour_swap, ``all`` = every kind.

One entry point
---------------
:func:`augment` returns a set of exactly ``total`` examples -- a training budget -- of which a share
``original`` are original examples (drawn in rounds from the pool, so nothing repeats before everything
was used once) and the rest are split evenly among the requested kinds. With no kinds it is the
unaugmented baseline under the same budget.

No leakage
----------
Only ``split.train`` (rows before the cutoff) and the catalog texts are read. By default no item first
sold at or after the cutoff (a *cold* item of the split) can appear, neither in an example nor as a
source of words; ``include_cold=True`` (synthetic interactions) and ``among="catalog"`` (neighbour
words) let them in through their catalog text alone -- never through a row after the cutoff.
Everything is deterministic under ``seed``.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..data.protocol import item_counts
from ..data.text import CONTEXT_SEPARATOR, context_text, tfidf_similarity
from ..evaluation.metrics import topk_items
from .pairs import Examples, invoice_baskets

AUGMENTATIONS = ("crop", "mask", "reorder", "sub_baskets", "word_dropout", "neighbour_swap", "synthetic")
GROUPS = {
    "sequence": ("crop", "mask", "reorder"),
    "text": ("word_dropout", "neighbour_swap"),
    "all": AUGMENTATIONS,
}
SEQUENCE_AUGMENTATIONS = GROUPS["sequence"]
TEXT_AUGMENTATIONS = GROUPS["text"]

# Default strength of each augmentation; ``augment(..., options={"crop": {"keep": 0.5}})`` changes one.
DEFAULTS = {
    "crop": {"keep": 0.6},
    "mask": {"p": 0.3},
    "reorder": {"window": 0.6},
    "sub_baskets": {"max_k": 5, "max_size": 20},
    "word_dropout": {"p": 0.2},
    "neighbour_swap": {"p": 0.3, "neighbours": 5, "among": "train"},
    "synthetic": {"mode": "only", "max_invoices": 2, "neighbours": 3, "min_similarity": 0.2,
                  "include_cold": False, "max_k": 5},
}
MODES = ("only", "add", "replace")


@dataclasses.dataclass
class Augmented(Examples):
    """Examples plus where each came from.

    Attributes (besides ``context, country, date, targets`` of :class:`~coldstart.training.pairs.Examples`)
    ----------
    kind: ``"original"`` or the augmentation that made the example, one per example.
    texts: per example ``None`` (use the catalog texts of the context items) or a list of rewritten
        texts, one per context item (the text-side augmentations).
    """

    kind: np.ndarray = None
    texts: list = None

    def __post_init__(self):
        n = len(self.context)
        if self.kind is None:
            self.kind = np.array(["original"] * n, dtype=object)
        if self.texts is None:
            self.texts = [None] * n
        if not (len(self.targets) == len(self.country) == len(self.date) == len(self.kind) == len(self.texts) == n):
            raise ValueError("Augmented: context, targets, country, date, kind and texts must have one entry per "
                             "example")


def as_augmented(examples: Examples, kind: str = "original") -> Augmented:
    """Wrap plain examples (all of one ``kind``) as :class:`Augmented`."""
    if isinstance(examples, Augmented):
        return examples
    n = len(examples)
    return Augmented(context=list(examples.context), targets=list(examples.targets),
                     country=np.asarray(examples.country, dtype=object),
                     date=np.asarray(examples.date, dtype="datetime64[ns]"), kind=np.array([kind] * n, dtype=object),
                     texts=[None] * n)


def concat(*parts: Examples) -> Augmented:
    """One :class:`Augmented` set from several (plain examples count as ``original``)."""
    parts = [as_augmented(p) for p in parts]
    if not parts:
        return _empty()
    return Augmented(
        context=[c for p in parts for c in p.context], targets=[t for p in parts for t in p.targets],
        country=np.concatenate([p.country for p in parts]).astype(object),
        date=np.concatenate([p.date for p in parts]).astype("datetime64[ns]"),
        kind=np.concatenate([p.kind for p in parts]).astype(object), texts=[x for p in parts for x in p.texts],
    )


def _empty() -> Augmented:
    return Augmented(context=[], targets=[], country=np.array([], dtype=object),
                     date=np.array([], dtype="datetime64[ns]"), kind=np.array([], dtype=object), texts=[])


def context_strings(examples: Examples, catalog_texts: Sequence[str], sep: str = CONTEXT_SEPARATOR) -> list:
    """The context of every example written as one text (the two-tower model's user side,
    :func:`~coldstart.data.text.context_text`): the rewritten texts of text-side augmentations,
    otherwise the catalog texts, in click order."""
    texts = np.asarray(catalog_texts, dtype=object)
    own = getattr(examples, "texts", None) or [None] * len(examples)
    return [context_text(t if t is not None else texts[np.asarray(c, dtype=np.int64)], sep=sep)
            for c, t in zip(examples.context, own)]


# -- sequence augmentations -------------------------------------------------------------------------
def _merge_targets(extra, targets) -> np.ndarray:
    return np.array(list(dict.fromkeys([int(i) for i in extra] + [int(i) for i in targets])), dtype=np.int64)


def crop(context, targets, rng, keep: float = 0.6):
    """Keep a contiguous window of ``max(1, floor(keep * k))`` clicks (fewer than ``k``); the clicks
    cut off join the targets. Returns ``(context, targets)``; a one-click context is returned as is."""
    context = np.asarray(context, dtype=np.int64)
    k = len(context)
    if k < 2:
        return context, np.asarray(targets, dtype=np.int64)
    m = min(k - 1, max(1, int(np.floor(keep * k))))
    start = int(rng.integers(0, k - m + 1))
    kept = context[start : start + m]
    cut = np.concatenate([context[:start], context[start + m :]])
    return kept, _merge_targets(cut, targets)


def mask(context, targets, rng, p: float = 0.3):
    """Hide each click with probability ``p`` -- at least one hidden, at least one kept; the hidden
    clicks join the targets. The kept clicks stay in order."""
    context = np.asarray(context, dtype=np.int64)
    k = len(context)
    if k < 2:
        return context, np.asarray(targets, dtype=np.int64)
    hide = rng.random(k) < p
    if not hide.any():
        hide[int(rng.integers(k))] = True
    if hide.all():
        hide[int(rng.integers(k))] = False
    return context[~hide], _merge_targets(context[hide], targets)


def reorder(context, targets, rng, window: float = 0.6):
    """Shuffle a contiguous window of ``max(2, floor(window * k))`` clicks into a different order."""
    context = np.asarray(context, dtype=np.int64)
    k = len(context)
    targets = np.asarray(targets, dtype=np.int64)
    if k < 2:
        return context, targets
    m = min(k, max(2, int(np.floor(window * k))))
    start = int(rng.integers(0, k - m + 1))
    part = context[start : start + m]
    perm = rng.permutation(m)
    if np.array_equal(perm, np.arange(m)):
        perm = np.roll(perm, 1)  # a shuffle that changes nothing is no augmentation
    out = context.copy()
    out[start : start + m] = part[perm]
    return out, targets


_SEQUENCE = {"crop": crop, "mask": mask, "reorder": reorder}


# -- text-side augmentations ------------------------------------------------------------------------
def word_dropout(text: str, rng, p: float = 0.2) -> str:
    """Drop each word with probability ``p``; at least one word stays."""
    words = str(text).split()
    if len(words) < 2:
        return " ".join(words)
    keep = rng.random(len(words)) >= p
    if not keep.any():
        keep[int(rng.integers(len(words)))] = True
    return " ".join(w for w, k in zip(words, keep) if k)


def neighbour_word_swap(text: str, neighbour_texts: Sequence[str], rng, p: float = 0.3) -> str:
    """Replace ``max(1, round(p * words))`` words by words of the neighbours' texts (a random
    neighbour, a random word of it that differs from the one replaced)."""
    words = str(text).split()
    pools = [w.split() for w in neighbour_texts if str(w).strip()]
    if not words or not pools:
        return " ".join(words)
    n = max(1, int(round(p * len(words))))
    for pos in rng.choice(len(words), size=min(n, len(words)), replace=False):
        pool = [w for w in pools[int(rng.integers(len(pools)))] if w != words[pos]]
        if pool:
            words[pos] = pool[int(rng.integers(len(pool)))]
    return " ".join(words)


def text_neighbours(texts: Sequence[str], n: int = 5, candidates: Optional[np.ndarray] = None,
                    similarity: Optional[np.ndarray] = None, rows: Optional[np.ndarray] = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each item's ``n`` nearest other items by TF-IDF cosine of their texts.

    ``candidates`` (boolean mask or positions) limits which items may be neighbours (default: all);
    ``rows`` (positions) limits whose neighbours are computed (default: every item's); ``similarity``
    is a precomputed item-item cosine matrix (default: :func:`~coldstart.data.text.tfidf_similarity`
    of ``texts``).
    Returns ``(neighbours, similarities)``, both ``(len(rows), n)``, most similar first; items with
    fewer than ``n`` candidates get ``-1`` (similarity ``-inf``) in the missing places. Ties are
    broken by catalog position, so the result is deterministic.
    """
    full = tfidf_similarity(texts) if similarity is None else similarity
    n_items = full.shape[1]
    rows = np.arange(full.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    sim = np.array(full[rows], dtype=np.float32)  # a copy: the caller's matrix is not touched
    allowed = np.ones(n_items, dtype=bool)
    if candidates is not None:
        candidates = np.asarray(candidates)
        allowed = candidates.astype(bool) if candidates.dtype == bool else np.isin(np.arange(n_items), candidates)
    sim[:, ~allowed] = -np.inf
    sim[np.arange(len(rows)), rows] = -np.inf  # never itself
    order = topk_items(sim, n)  # most similar first, ties to the lower position; -1 where none is left
    best = np.where(order >= 0, np.take_along_axis(sim, np.maximum(order, 0), axis=1), -np.inf).astype(np.float32)
    return order, best


# -- helpers on the split -------------------------------------------------------------------------
def catalog_similarity(split) -> np.ndarray:
    """TF-IDF text cosine of the split's catalog, weights learnt from the texts of items sold before
    the cutoff only (so cold items' texts change nothing between known items); computed once per split."""
    return split.cached("augmentation similarity", lambda s: tfidf_similarity(s.texts(), fit_on=_known(s)))


def _known(split) -> np.ndarray:
    """Items first sold before the cutoff (the only ones a strict augmentation may touch)."""
    return ~split.catalog["cold"].to_numpy(dtype=bool)


def invoice_counts(split) -> np.ndarray:
    """Training invoices per catalog item, counted from ``split.train`` (not the catalog column, so a
    sampled-down split counts right)."""
    return item_counts(split.train, split.item_ids, "invoice")


def scarce_split(split, customers: float = 0.2, seed: int = 0):
    """A copy of ``split`` whose training rows are those of a random share ``customers`` of the
    training customers: the scarce-data setting augmentation is for. Catalog, cutoff and evaluation
    cases are unchanged; the catalog's training counts are recomputed from the kept rows."""
    if not 0 < customers <= 1:
        raise ValueError(f"customers must be a share in (0, 1], got {customers}")
    ids = np.sort(split.train["customer"].unique())
    n = max(1, int(round(customers * len(ids))))
    keep = np.random.default_rng(seed).choice(ids, size=n, replace=False)
    return split.with_train(split.train[split.train["customer"].isin(keep)])


# -- new pseudo-users -------------------------------------------------------------------------------
def sub_baskets(split, n: int, seed: int = 0, max_k: int = 5, max_size: int = 20) -> Augmented:
    """``n`` pseudo-users from random sub-baskets of real training invoices.

    An invoice with at least three distinct items is drawn at random; a random subset of 2 ..
    ``max_size`` of its items (kept in line order, and never the whole invoice when it is that small)
    is the pseudo-user's basket; its first ``k`` items (``k`` from 1 to ``min(max_k, size - 1)``) are
    the context and the rest the targets.
    """
    pick_rng, rng = _streams(seed, 2)  # which invoices / what of each: a larger n extends a smaller one
    baskets = invoice_baskets(split)
    usable = baskets[baskets["items"].map(len) >= 3]
    if n and usable.empty:
        raise ValueError("sub_baskets needs training invoices with at least three distinct items; this split has none")
    context, targets, country, date = [], [], [], []
    pick = pick_rng.integers(0, len(usable), size=n) if n else np.zeros(0, dtype=np.int64)
    for i in pick:
        items = usable["items"].iloc[i]
        top = min(max_size, len(items) - 1)
        size = int(rng.integers(2, top + 1))
        chosen = np.sort(rng.choice(len(items), size=size, replace=False))
        basket = items[chosen]
        k = int(rng.integers(1, min(max_k, size - 1) + 1))
        context.append(basket[:k])
        targets.append(basket[k:])
        country.append(usable["country"].iloc[i])
        date.append(usable["date"].iloc[i])
    return Augmented(context=context, targets=targets, country=np.array(country, dtype=object),
                     date=np.array(date, dtype="datetime64[ns]"), kind=np.array(["sub_baskets"] * n, dtype=object),
                     texts=[None] * n)


def synthetic_plan(split, max_invoices: int = 2, neighbours: int = 3, min_similarity: float = 0.2,
                   include_cold: bool = False, similarity: Optional[np.ndarray] = None) -> pd.DataFrame:
    """Which rare items get synthetic interactions, and from which neighbours.

    Rare items: at most ``max_invoices`` training invoices; with ``include_cold`` also the split's
    cold items (first sold at or after the cutoff: no rows, only their catalog text). Each gets its
    ``neighbours`` nearest items by TF-IDF text cosine among the *well-known* items (more than
    ``max_invoices`` training invoices), keeping those with similarity >= ``min_similarity``. Rare
    items with no such neighbour are left out.

    Returns a table with one row per (rare item, neighbour): ``item, neighbour, similarity,
    item_invoices, neighbour_invoices, cold`` (positions in the catalog).
    """
    counts = invoice_counts(split)
    known = _known(split)
    rare = (counts <= max_invoices) & (known | bool(include_cold))
    well_known = (counts > max_invoices) & known
    rare_items = np.flatnonzero(rare)
    near, sims = text_neighbours(split.texts(), n=neighbours, candidates=well_known, rows=rare_items,
                                 similarity=catalog_similarity(split) if similarity is None else similarity)
    rows = []
    for item, near_i, sims_i in zip(rare_items, near, sims):
        for nb, s in zip(near_i, sims_i):
            if nb >= 0 and s >= min_similarity:
                rows.append((int(item), int(nb), float(s), int(counts[item]), int(counts[nb]), bool(not known[item])))
    columns = ["item", "neighbour", "similarity", "item_invoices", "neighbour_invoices", "cold"]
    return pd.DataFrame(rows, columns=columns)


def synthetic_interactions(split, plan: pd.DataFrame, n: int, seed: int = 0, mode: str = "only",
                           max_k: int = 5) -> Augmented:
    """``n`` synthetic pseudo-users who buy a rare item, made from its neighbours' real invoices.

    Rare items are taken in rounds (each once before any twice); for each, a neighbour from ``plan``
    and a real training invoice holding that neighbour with at least one other item. The invoice's
    items without the neighbour (line order) give the context: its first ``k`` items (``k`` from 1 to
    ``min(max_k, items)``). The targets depend on ``mode``:

    * ``only`` -- the rare item alone: the pseudo-user's one purchase is the rare item;
    * ``add`` -- the rare item first, then the invoice's other items, the neighbour included;
    * ``replace`` -- the rare item takes the neighbour's place: as ``add`` without the neighbour.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if n and plan.empty:
        raise ValueError("synthetic_interactions: the plan is empty (no rare item has a close enough "
                         "neighbour); raise max_invoices or lower min_similarity")
    order_rng, rng = _streams(seed, 2)
    baskets = invoice_baskets(split)
    holding: dict = {}
    for b, items in enumerate(baskets["items"]):
        if len(items) >= 2:
            for i in items:
                holding.setdefault(int(i), []).append(b)
    # an invoice that holds nothing but the neighbour and the rare item leaves no context
    sets = [set(int(i) for i in items) for items in baskets["items"]]
    usable = {}
    for item, nb in zip(plan["item"], plan["neighbour"]):
        bs = [b for b in holding.get(int(nb), []) if sets[b] - {int(nb), int(item)}]
        if bs:
            usable[(int(item), int(nb))] = bs
    keep = np.array([(int(i), int(nb)) in usable for i, nb in zip(plan["item"], plan["neighbour"])], dtype=bool)
    plan = plan.loc[keep]
    if n and plan.empty:
        raise ValueError("synthetic_interactions: no neighbour in the plan appears in a training invoice with "
                         "another item")
    by_item = {item: g for item, g in plan.groupby("item", sort=True)}
    items = np.array(sorted(by_item), dtype=np.int64)
    order = _rounds(order_rng, len(items), n)
    context, targets, country, date = [], [], [], []
    for j in order:
        item = int(items[j])
        g = by_item[item]
        nb = int(g["neighbour"].iloc[int(rng.integers(len(g)))])
        bs = usable[(item, nb)]
        b = bs[int(rng.integers(len(bs)))]
        basket = baskets["items"].iloc[b]
        others = basket[(basket != nb) & (basket != item)]
        k = int(rng.integers(1, min(max_k, len(others)) + 1))
        ctx, rest = others[:k], others[k:]
        if mode == "only":
            tgt = [item]
        elif mode == "add":
            tgt = [item, *rest.tolist(), nb]
        else:
            tgt = [item, *rest.tolist()]
        context.append(ctx)
        targets.append(np.array(tgt, dtype=np.int64))
        country.append(baskets["country"].iloc[b])
        date.append(baskets["date"].iloc[b])
    return Augmented(context=context, targets=targets, country=np.array(country, dtype=object),
                     date=np.array(date, dtype="datetime64[ns]"),
                     kind=np.array(["synthetic"] * len(order), dtype=object), texts=[None] * len(order))


# -- the entry point --------------------------------------------------------------------------------
def _streams(seed, n: int) -> list:
    """``n`` independent random generators from one seed (an int or a ``SeedSequence``)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(s) for s in root.spawn(n)]


def _rounds(rng, n_pool: int, n: int) -> np.ndarray:
    """``n`` indices into a pool of ``n_pool``: random permutations one after another (every index
    once per round)."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_pool <= 0:
        raise ValueError("cannot draw from an empty pool")
    reps = -(-n // n_pool)
    return np.concatenate([rng.permutation(n_pool) for _ in range(reps)])[:n].astype(np.int64)


def resolve_kinds(kinds) -> tuple:
    """Kinds and group names (``sequence``, ``text``, ``all``) as a tuple of kinds, in :data:`AUGMENTATIONS`
    order, without repeats. Unknown names raise ``ValueError``."""
    if kinds is None:
        return ()
    if isinstance(kinds, str):
        kinds = [kinds]
    out = []
    for name in kinds:
        if name in GROUPS:
            out += GROUPS[name]
        elif name in AUGMENTATIONS:
            out.append(name)
        else:
            raise ValueError(f"Unknown augmentation {name!r}: choose from {AUGMENTATIONS} "
                             f"or the groups {tuple(GROUPS)}")
    return tuple(k for k in AUGMENTATIONS if k in out)


def _options(options: Optional[dict]) -> dict:
    merged = {k: dict(v) for k, v in DEFAULTS.items()}
    for kind, values in (options or {}).items():
        if kind not in DEFAULTS:
            raise ValueError(f"options for unknown augmentation {kind!r}: choose from {AUGMENTATIONS}")
        unknown = set(values) - set(DEFAULTS[kind])
        if unknown:
            raise ValueError(f"Unknown option(s) {sorted(unknown)} for {kind}: it takes {sorted(DEFAULTS[kind])}")
        merged[kind].update(values)
    if merged["synthetic"]["mode"] not in MODES:
        raise ValueError(f"synthetic mode must be one of {MODES}, got {merged['synthetic']['mode']!r}")
    if merged["neighbour_swap"]["among"] not in ("train", "catalog"):
        raise ValueError("neighbour_swap among must be 'train' (items sold before the cutoff) or 'catalog'")
    return merged


def _transformed(pool: Augmented, kind: str, n: int, seed, opts: dict, split, cache: dict) -> Augmented:
    """``n`` copies of pool examples changed by a sequence or text augmentation."""
    draw_rng, rng = _streams(seed, 2)
    if kind in _SEQUENCE:
        eligible = np.flatnonzero([len(c) >= 2 for c in pool.context])
        if n and not len(eligible):
            raise ValueError(f"{kind} needs examples with at least two context items; the pool has none")
    else:
        eligible = np.arange(len(pool))
    src = eligible[_rounds(draw_rng, len(eligible), n)]
    catalog = np.asarray(split.texts(), dtype=object)
    context, targets, texts = [], [], []
    for i in src:
        ctx, tgt = pool.context[i], pool.targets[i]
        own = pool.texts[i]
        if kind in _SEQUENCE:
            ctx, tgt = _SEQUENCE[kind](ctx, tgt, rng, **opts)
            own = None
        else:
            base = own if own is not None else list(catalog[np.asarray(ctx, dtype=np.int64)])
            if kind == "word_dropout":
                own = [word_dropout(t, rng, p=opts["p"]) for t in base]
            else:
                near = cache["near"]
                own = [neighbour_word_swap(t, [catalog[j] for j in near[int(c)] if j >= 0], rng, p=opts["p"])
                       for t, c in zip(base, ctx)]
        context.append(np.asarray(ctx, dtype=np.int64))
        targets.append(np.asarray(tgt, dtype=np.int64))
        texts.append(own)
    return Augmented(context=context, targets=targets, country=pool.country[src], date=pool.date[src],
                     kind=np.array([kind] * len(src), dtype=object), texts=texts)


def augment(
    examples: Examples,
    split,
    kinds: Sequence[str] = (),
    total: Optional[int] = None,
    original: float = 0.5,
    seed: int = 0,
    options: Optional[dict] = None,
    return_kinds: bool = False,
):
    """A training set of exactly ``total`` examples: a share ``original`` of original examples, the
    rest split evenly among ``kinds`` (augmentation names or groups, see :data:`AUGMENTATIONS`, :data:`GROUPS`).

    Parameters
    ----------
    examples: the original pool (e.g. :func:`coldstart.training.pairs.training_examples` of ``split``).
    split: the split the pool was made from; only ``split.train`` and the catalog texts are read.
    kinds: which augmentations; empty gives ``total`` original examples (the unaugmented baseline
        under the same budget).
    total: the budget (default: the pool's size). Original examples are drawn in rounds: every pool
        example once before any twice.
    original: share of the budget kept for original examples (ignored without kinds).
    seed: everything is deterministic under it.
    options: per-kind settings overriding :data:`DEFAULTS`, e.g. ``{"synthetic": {"mode": "add"}}``.
    return_kinds: also return the tuple of kinds used (groups resolved).

    Returns an :class:`Augmented` set in random order (``.kind`` says what made each example), or
    ``(set, kinds)`` with ``return_kinds``.
    """
    kinds = resolve_kinds(kinds)
    opts = _options(options)
    pool = as_augmented(examples)
    total = len(pool) if total is None else int(total)
    if total < 0:
        raise ValueError("total must be >= 0")
    if not 0.0 <= original <= 1.0:
        raise ValueError(f"original must be a share in [0, 1], got {original}")
    if not kinds:
        original = 1.0
    if len(pool) == 0 and (original > 0 or set(kinds) & set(SEQUENCE_AUGMENTATIONS + TEXT_AUGMENTATIONS)):
        raise ValueError("the pool of original examples is empty")
    n_orig = int(round(original * total))
    n_aug = total - n_orig
    quota = ({k: n_aug // len(kinds) + (1 if i < n_aug % len(kinds) else 0) for i, k in enumerate(kinds)}
             if kinds else {})
    # one seed per kind, whatever else is asked for: a kind's examples do not depend on the others
    seeds = dict(zip(("original", "shuffle") + AUGMENTATIONS,
                     np.random.SeedSequence(seed).spawn(2 + len(AUGMENTATIONS))))
    cache: dict = {}
    if quota.get("neighbour_swap"):
        o = opts["neighbour_swap"]
        candidates = None if o["among"] == "catalog" else _known(split)
        used = np.unique(np.concatenate([np.asarray(c, dtype=np.int64) for c in pool.context]))
        near, _ = text_neighbours(split.texts(), n=o["neighbours"], candidates=candidates,
                                  similarity=catalog_similarity(split), rows=used)
        cache["near"] = dict(zip(used.tolist(), near))
    parts = [pool.subset(_rounds(np.random.default_rng(seeds["original"]), len(pool), n_orig))]
    for kind in kinds:
        q, seed_k = quota[kind], seeds[kind]
        if kind == "sub_baskets":
            part = sub_baskets(split, q, seed=seed_k, **opts["sub_baskets"])
        elif kind == "synthetic":
            o = opts["synthetic"]
            plan = synthetic_plan(split, max_invoices=o["max_invoices"], neighbours=o["neighbours"],
                                  min_similarity=o["min_similarity"], include_cold=o["include_cold"])
            part = synthetic_interactions(split, plan, q, seed=seed_k, mode=o["mode"], max_k=o["max_k"])
        else:
            o = {k: v for k, v in opts[kind].items() if k not in ("neighbours", "among")}
            part = _transformed(pool, kind, q, seed_k, o, split, cache)
        parts.append(part)
    out = concat(*parts)
    out = out.subset(np.random.default_rng(seeds["shuffle"]).permutation(len(out)))
    return (out, kinds) if return_kinds else out


def describe(examples: Examples, split=None) -> pd.DataFrame:
    """One row per kind: examples, mean context length, mean targets, share with rewritten texts and,
    given the split, how many distinct items appear as targets and the share of target mentions that
    are rare items (at most two training invoices) or cold items."""
    ex = as_augmented(examples)
    frame = pd.DataFrame({
        "kind": ex.kind,
        "context items": [len(c) for c in ex.context],
        "targets": [len(t) for t in ex.targets],
        "rewritten text": [t is not None for t in ex.texts],
    })
    table = frame.groupby("kind", sort=False).agg(
        examples=("kind", "size"), **{"mean context items": ("context items", "mean"),
                                      "mean targets": ("targets", "mean"),
                                      "rewritten text": ("rewritten text", "mean")})
    if split is not None:
        counts = invoice_counts(split)
        cold = split.catalog["cold"].to_numpy(dtype=bool)
        extra = {}
        for kind in table.index:
            idx = np.flatnonzero(ex.kind == kind)
            tg = np.concatenate([ex.targets[i] for i in idx]) if len(idx) else np.zeros(0, np.int64)
            extra[kind] = {"distinct targets": len(np.unique(tg)),
                           "rare targets": float(np.mean((counts[tg] <= 2) & ~cold[tg])) if len(tg) else np.nan,
                           "cold targets": float(np.mean(cold[tg])) if len(tg) else np.nan}
        table = table.join(pd.DataFrame(extra).T)
    order = [k for k in ("original",) + AUGMENTATIONS if k in table.index]
    return table.loc[order]
