"""Training examples and pairs, built the way the protocol builds test cases, from training rows only.

A model is used on "the first k clicks of a new customer's first invoice -> what else will they buy".
Training it on anything else (random co-purchase pairs, say) teaches a different task. So
:func:`training_examples` makes *pseudo new users* out of the rows before the cutoff: for each
invoice of each training customer, the context is the first ``k`` distinct items of the invoice
(line order, ``k`` drawn from 1..``max_k``), and the targets are the invoice's other items plus
everything the customer bought later (still before the cutoff). Only ``split.train`` is read, so
no test-period row can leak in.

:func:`ctr_pairs` turns such examples into labelled (context, candidate, label) triples for the
CTR cross-encoder: each positive is a real target, each negative an item sampled from the catalog
that the pseudo user never bought. :func:`tokenized_tower_pairs` turns them into the two-tower
model's (context text, bought item) pairs, and :func:`tower_dataset` into its training data, a fresh
draw per epoch. :func:`history_pairs` draws the same kind of pairs from the published benchmark.

:func:`teacher_pairs` and :func:`item_pair_dataset` are the other way notebook 03 teaches: item-to-item
pairs whose positives come from the ID part (distillation). A text tower trained on them learns which
*products* the purchases put together, and a new product, which the ID part cannot score, inherits
that structure through its text. :func:`hard_negatives` adds to each pair a product with similar words
that the ID part does not put with the anchor.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..data.benchmark import MAX_HISTORY, SeqBenchmark
from ..data.protocol import Cases
from ..data.text import context_text
from .pipeline import pairs_dataset


@dataclasses.dataclass
class Examples(Cases):
    """Pseudo-user examples: :class:`~coldstart.data.protocol.Cases` (``context``, in click order,
    ``country``, ``date``) with ``targets[i]``, an int array of the catalog positions bought."""

    targets: list


def invoice_baskets(split) -> pd.DataFrame:
    """The split's training invoices in time order (date, invoice, line), one row each: ``items``, the
    distinct items as catalog positions in line order (an int64 array), and the invoice's
    ``customer``, ``country`` and ``date``. Computed once per split (:meth:`ColdStartSplit.cached
    <coldstart.data.protocol.ColdStartSplit.cached>`)."""
    return split.cached("invoice baskets", _invoice_baskets)


def _invoice_baskets(split) -> pd.DataFrame:
    rows = split.train.sort_values(["date", "invoice", "line"], kind="stable")
    rows = rows.assign(p=pd.Series(np.arange(split.n_items), index=split.item_ids).reindex(rows["item"]).to_numpy())
    rows = rows.dropna(subset=["p"]).drop_duplicates(["invoice", "item"])
    return rows.groupby("invoice", sort=False).agg(
        items=("p", lambda s: np.asarray(s, dtype=np.int64)), customer=("customer", "first"),
        country=("country", "first"), date=("date", "first"))


def training_examples(
    split,
    max_k: int = 5,
    per_invoice: int = 1,
    seed: int = 0,
    first_invoice_only: bool = False,
    max_examples: Optional[int] = None,
) -> Examples:
    """Protocol-like examples from ``split.train`` (see the module docstring).

    Parameters
    ----------
    split: a :class:`~coldstart.data.protocol.ColdStartSplit`; only its training rows are read.
    max_k: largest context size; ``k`` is drawn uniformly from 1..min(max_k, basket size - 1).
    per_invoice: examples drawn per invoice (with different ``k``).
    first_invoice_only: use only each customer's first invoice (exactly the test construction,
        but about a fifth of the data).
    max_examples: keep a random subset of at most this many (``None``: all).
    """
    rng = np.random.default_rng(seed)
    context, targets, country, date = [], [], [], []
    for _, cust in invoice_baskets(split).groupby("customer", sort=False):
        invoices = list(cust["items"])
        for j, items in enumerate(invoices[:1] if first_invoice_only else invoices):
            if len(items) < 2:
                continue
            later = [i for basket in invoices[j + 1:] for i in basket]
            for _ in range(per_invoice):
                k = int(rng.integers(1, min(max_k, len(items) - 1) + 1))
                ctx = items[:k]
                tgt = [i for i in dict.fromkeys([*items[k:], *later]) if i not in ctx]
                context.append(np.array(ctx, dtype=np.int64))
                targets.append(np.array(tgt, dtype=np.int64))
                country.append(cust["country"].iloc[j])
                date.append(cust["date"].iloc[j])
    ex = Examples(context=context, targets=targets, country=np.array(country, dtype=object),
                  date=np.array(date, dtype="datetime64[ns]"))
    if max_examples is not None and len(ex) > max_examples:
        ex = ex.subset(np.sort(rng.choice(len(ex), size=max_examples, replace=False)))
    return ex


def positive_pairs(examples: Examples, seed: int = 0) -> tuple[list, np.ndarray]:
    """One (context, positive item) pair per example, the positive drawn from its targets."""
    rng = np.random.default_rng(seed)
    positives = np.array([int(rng.choice(t)) for t in examples.targets], dtype=np.int64)
    return list(examples.context), positives


def tokenize_tower_pairs(contexts: Sequence[str], items: np.ndarray, texts, tokenizer, context_len: int = 64,
                         item_len: int = 32) -> dict:
    """Two-tower pairs, tokenized: ``{"context_ids", "item_ids", "item"}``, the context texts cut to
    ``context_len`` tokens, the item texts (``texts[items]``) to ``item_len``, and the items' catalog
    positions (int32). Ready for :func:`coldstart.training.pipeline.pairs_dataset`."""
    texts = np.asarray(texts, dtype=object)
    return {
        "context_ids": tokenizer(list(contexts), truncation=True, max_length=context_len)["input_ids"],
        "item_ids": tokenizer(list(texts[items]), truncation=True, max_length=item_len)["input_ids"],
        "item": np.asarray(items).astype(np.int32),
    }


def tokenized_tower_pairs(examples: Examples, texts, tokenizer, n: int, seed: int = 0,
                          context_len: int = 64, item_len: int = 32) -> dict:
    """``n`` (context, positive item) pairs for the two-tower model, tokenized.

    Draws ``n`` examples without replacement (all of them if there are fewer), one positive each
    (:func:`positive_pairs`), writes each context as one text (:func:`~coldstart.data.text.context_text`)
    and tokenizes the pairs (:func:`tokenize_tower_pairs`).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    texts = np.asarray(texts, dtype=object)
    pick = np.random.default_rng(seed).choice(len(examples), size=min(n, len(examples)), replace=False)
    context, positives = positive_pairs(examples.subset(pick), seed=seed)
    return tokenize_tower_pairs([context_text(texts[c]) for c in context], positives, texts, tokenizer,
                                context_len=context_len, item_len=item_len)


def tower_dataset(examples: Examples, texts, tokenizer, n_pairs: int, epochs: int, batch_size: int,
                  item_len: int = 32, context_len: int = 64) -> tuple:
    """The two-tower model's training data: a fresh draw of ``n_pairs`` pairs per epoch (epoch ``e``
    draws with seed ``e``, :func:`tokenized_tower_pairs`), length-bucketed and repeated, so every
    model trained on the same examples sees the same batches.

    Returns ``(dataset, steps per epoch)`` for ``fit(dataset, steps_per_epoch=..., epochs=epochs)``.
    """
    draws = [tokenized_tower_pairs(examples, texts, tokenizer, n_pairs, seed=epoch, context_len=context_len,
                                   item_len=item_len) for epoch in range(epochs)]
    return pairs_dataset(draws, batch_size).repeat(), len(draws[0]["item"]) // batch_size


def teacher_pairs(id_matrix: np.ndarray, n: int, seed: int = 0, neighbours: int = 50) -> tuple:
    """``n`` item-to-item pairs ``(anchors, positives)`` taught by an ID part's item matrix.

    ``id_matrix`` is an item-to-item matrix such as :attr:`ItemRegression.B
    <coldstart.models.baselines.ItemRegression>`: row ``a`` says how much a click on ``a`` raises
    every item's score. Anchors are drawn uniformly from the items whose row has a positive weight
    (items bought before the cutoff: the ID part knows nothing of the others); each anchor's positive
    is drawn from its ``neighbours`` largest positive weights, in proportion to the weight. Drawing
    anchors uniformly, not by sales, gives the long tail as many lessons as the best sellers.
    Returns two int64 arrays of catalog positions.
    """
    if n < 1 or neighbours < 1:
        raise ValueError(f"n and neighbours must be at least 1, got n={n}, neighbours={neighbours}")
    B = np.asarray(id_matrix)
    k = min(neighbours, B.shape[1] - 1)
    top = np.argpartition(-B, k, axis=1)[:, :k]                    # each row's k largest weights
    weights = np.maximum(np.take_along_axis(B, top, axis=1), 0.0).astype(np.float64)
    weights[top == np.arange(len(B))[:, None]] = 0.0              # an item is not its own neighbour
    taught = np.flatnonzero(weights.sum(axis=1) > 0)
    if not len(taught):
        raise ValueError("the ID part's matrix has no positive weight: nothing to teach")
    rng = np.random.default_rng(seed)
    anchors = rng.choice(taught, size=n)
    cumulative = np.cumsum(weights[anchors], axis=1)
    draws = rng.random(n) * cumulative[:, -1]
    positives = top[anchors, np.minimum((cumulative < draws[:, None]).sum(axis=1), k - 1)]
    return anchors.astype(np.int64), positives.astype(np.int64)


def hard_negatives(id_matrix: np.ndarray, similarity: np.ndarray, anchors: np.ndarray, pool: int = 30,
                   seed: int = 0) -> np.ndarray:
    """One hard negative per anchor: a product whose *text* is close to the anchor's but which the ID
    part does not put with it.

    ``similarity`` is an item-by-item text similarity (e.g. TF-IDF cosines). For each anchor the
    candidates are its ``pool`` most similar other items that the ID part knows (a nonzero row of
    ``id_matrix``) and whose weight ``id_matrix[anchor, h]`` is not positive; one is drawn uniformly.
    An anchor without such a candidate gets a random known item that the ID part does not put with
    it. In-batch negatives are mostly easy (a cake stand against a doormat); these teach the tower
    that "red retrospot cake stand" and "red retrospot lunch bag" are not bought together although
    they share words. Returns int64 positions.
    """
    B = np.asarray(id_matrix)
    S = np.asarray(similarity, dtype=np.float32)
    if S.shape != B.shape or B.shape[0] != B.shape[1]:
        raise ValueError(f"similarity {S.shape} and id_matrix {B.shape} must be the same square shape")
    if pool < 1:
        raise ValueError(f"pool must be at least 1, got {pool}")
    anchors = np.asarray(anchors, dtype=np.int64)
    known = np.flatnonzero(B.any(axis=1))
    if not len(known):
        raise ValueError("the ID part's matrix is all zero: no product to draw a negative from")
    rng = np.random.default_rng(seed)
    out = np.empty(len(anchors), np.int64)
    candidates = {}
    for j, a in enumerate(anchors):
        if a not in candidates:
            row = S[a].copy()
            row[a] = -np.inf                                           # an item is not its own negative
            nearest = np.argsort(-row, kind="stable")[:pool]
            candidates[a] = nearest[(B[nearest].any(axis=1)) & (B[a, nearest] <= 0)]
            if not len(candidates[a]):                                 # no near one: any the ID part keeps apart
                apart = known[(B[a, known] <= 0) & (known != a)]
                candidates[a] = apart if len(apart) else known
        out[j] = rng.choice(candidates[a])
    return out


def item_pair_dataset(id_matrix: np.ndarray, texts, tokenizer, n_pairs: int, epochs: int, batch_size: int,
                      item_len: int = 32, neighbours: int = 50, negatives_from: Optional[np.ndarray] = None,
                      pool: int = 30) -> tuple:
    """The text tower's training data from :func:`teacher_pairs`: a fresh draw of ``n_pairs`` pairs per
    epoch (epoch ``e`` draws with seed ``e``), each side one item's text cut to ``item_len`` tokens,
    length-bucketed and repeated. Each pair also carries ``context_item``, the anchor's position, so
    the loss can tell when another pair's positive is this pair's own anchor (not a negative).

    With ``negatives_from``, an item-by-item text similarity, each pair also carries one hard negative
    (:func:`hard_negatives`, ``pool`` candidates): ``neg_ids`` (its text) and ``neg_item`` (its
    position), which :class:`~coldstart.models.TwoTower` adds to the batch's candidates.

    Returns ``(dataset, steps per epoch)`` for ``fit(dataset, steps_per_epoch=..., epochs=epochs)``.
    """
    texts = np.asarray(texts, dtype=object)
    draws = []
    for epoch in range(epochs):
        anchors, positives = teacher_pairs(id_matrix, n_pairs, seed=epoch, neighbours=neighbours)
        draw = tokenize_tower_pairs(list(texts[anchors]), positives, texts, tokenizer, context_len=item_len,
                                    item_len=item_len)
        draw["context_item"] = anchors.astype(np.int32)
        if negatives_from is not None:
            negatives = hard_negatives(id_matrix, negatives_from, anchors, pool=pool, seed=1000 + epoch)
            draw["neg_ids"] = tokenizer(list(texts[negatives]), truncation=True, max_length=item_len)["input_ids"]
            draw["neg_item"] = negatives.astype(np.int32)
        draws.append(draw)
    return pairs_dataset(draws, batch_size).repeat(), n_pairs // batch_size


def history_pairs(bench: SeqBenchmark, n: Optional[int], seed: int = 0, last_m: int = 5) -> tuple:
    """``n`` training pairs (history text -> next item) of the published benchmark, drawn uniformly
    from its training parts: a pair is an invoice and a position ``t >= 1`` of its training part; the
    history is the items before ``t`` (at most the last 50), written as :class:`~coldstart.models.
    sequential.SeqTextModel` writes it (the ``last_m`` most recent first); the positive is the item at
    ``t``. No validation or test target is ever used. Returns ``(context texts, positive item
    positions)``."""
    parts = bench.train_sequences()
    lengths = np.array([len(p) - 1 for p in parts])  # positions t = 1 .. len - 1
    total = int(lengths.sum())
    rng = np.random.default_rng(seed)
    flat = rng.choice(total, size=min(n, total), replace=False) if n is not None else np.arange(total)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    inv = np.searchsorted(starts, flat, side="right") - 1
    pos = flat - starts[inv] + 1
    texts = np.asarray(bench.texts, dtype=object)
    contexts = [context_text(texts[parts[i][max(0, t - MAX_HISTORY):t]], newest_first=True, last=last_m)
                for i, t in zip(inv, pos)]
    items = np.array([parts[i][t] for i, t in zip(inv, pos)], dtype=np.int64)
    return contexts, items


def ctr_pairs(
    examples: Examples,
    n_items: int,
    negatives: int = 1,
    seed: int = 0,
    popularity: Optional[np.ndarray] = None,
) -> pd.DataFrame:
    """Labelled (context, candidate, label) triples for the CTR objective.

    For each example: one positive (a random target) and ``negatives`` sampled items the pseudo user
    did not buy, drawn uniformly or, with ``popularity`` (counts per item), in proportion to
    popularity ** 0.75 (harder negatives: popular items the user still did not buy).
    Returns a DataFrame with columns ``example, context, candidate, label``.
    """
    rng = np.random.default_rng(seed)
    probs = None
    if popularity is not None:
        weights = np.asarray(popularity, dtype=np.float64) ** 0.75
        probs = weights / weights.sum()
    rows = []
    for i, (ctx, tgt) in enumerate(zip(examples.context, examples.targets)):
        rows.append((i, ctx, int(rng.choice(tgt)), 1))
        bought = set(tgt) | set(ctx)
        got = 0
        while got < negatives:
            cand = int(rng.choice(n_items, p=probs))
            if cand not in bought:
                rows.append((i, ctx, cand, 0))
                got += 1
    return pd.DataFrame(rows, columns=["example", "context", "candidate", "label"])
