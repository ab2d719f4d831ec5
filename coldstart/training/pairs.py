"""Training examples built the way the protocol builds test cases, from training rows only.

A model is used on "the first k clicks of a new customer's first invoice -> what else will they buy".
Training it on anything else (random co-purchase pairs, say) teaches a different task. So
:func:`training_examples` makes *pseudo new users* out of the rows before the cutoff: for each
invoice of each training customer, the context is the first ``k`` distinct items of the invoice
(line order, ``k`` drawn from 1..``max_k``), and the targets are the invoice's other items plus
everything the customer bought later (still before the cutoff). Only ``split.train`` is read, so
no test-period row can leak in.

:func:`ctr_pairs` turns such examples into labelled (context, candidate, label) triples for the
CTR cross-encoder: each positive is a real target, each negative an item sampled from the catalog
that the pseudo user never bought.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import pandas as pd


@dataclasses.dataclass
class Examples:
    """Pseudo-user examples: ``context[i]`` (catalog positions, in click order) and ``targets[i]``."""

    context: list
    targets: list
    country: np.ndarray
    date: np.ndarray

    def __len__(self) -> int:
        return len(self.context)

    def subset(self, idx) -> "Examples":
        idx = np.asarray(idx, dtype=np.int64)  # an empty list is float64 to numpy: not an index
        return Examples([self.context[i] for i in idx], [self.targets[i] for i in idx],
                        self.country[idx], self.date[idx])


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
    split: a :class:`~coldstart.protocol.ColdStartSplit`; only its training rows are read.
    max_k: largest context size; ``k`` is drawn uniformly from 1..min(max_k, basket size - 1).
    per_invoice: examples drawn per invoice (with different ``k``).
    first_invoice_only: use only each customer's first invoice (exactly the test construction,
        but about a fifth of the data).
    max_examples: keep a random subset of at most this many (``None``: all).
    """
    rng = np.random.default_rng(seed)
    rows = split.train.sort_values(["date", "invoice", "line"], kind="stable")
    pos = {item: i for i, item in enumerate(split.item_ids)}
    rows = rows.assign(p=rows["item"].map(pos)).drop_duplicates(["invoice", "item"])
    baskets = rows.groupby("invoice", sort=False).agg(
        items=("p", list), customer=("customer", "first"), country=("country", "first"), date=("date", "first"))
    context, targets, country, date = [], [], [], []
    for _, cust in baskets.groupby("customer", sort=False):
        invoices = list(cust["items"])
        for j, items in enumerate(invoices[:1] if first_invoice_only else invoices):
            if len(items) < 2:
                continue
            later = [i for basket in invoices[j + 1:] for i in basket]
            for _ in range(per_invoice):
                k = int(rng.integers(1, min(max_k, len(items) - 1) + 1))
                ctx = items[:k]
                tgt = [i for i in dict.fromkeys(items[k:] + later) if i not in ctx]
                context.append(np.array(ctx, dtype=np.int64))
                targets.append(np.array(tgt, dtype=np.int64))
                country.append(cust["country"].iloc[j])
                date.append(cust["date"].iloc[j])
    ex = Examples(context, targets, np.array(country, dtype=object), np.array(date, dtype="datetime64[ns]"))
    if max_examples is not None and len(ex) > max_examples:
        ex = ex.subset(np.sort(rng.choice(len(ex), size=max_examples, replace=False)))
    return ex


def positive_pairs(examples: Examples, seed: int = 0) -> tuple[list, np.ndarray]:
    """One (context, positive item) pair per example, the positive drawn from its targets."""
    rng = np.random.default_rng(seed)
    positives = np.array([int(rng.choice(t)) for t in examples.targets], dtype=np.int64)
    return list(examples.context), positives


def tokenized_tower_pairs(examples: Examples, texts, tokenizer, n: int, seed: int = 0,
                          context_len: int = 64, item_len: int = 32) -> dict:
    """``n`` (context, positive item) pairs for the two-tower model, tokenized.

    Draws ``n`` examples without replacement (all of them if there are fewer), one positive each
    (:func:`positive_pairs`), writes a context as its item texts joined by `` ; `` (as notebooks 03
    and 06 do) and returns ``{"context_ids", "item_ids", "item"}``: token id lists truncated to
    ``context_len`` and ``item_len``, and the positives' catalog positions. Ready for
    :func:`coldstart.training.bucketed_dataset`.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    texts = np.asarray(texts, dtype=object)
    pick = np.random.default_rng(seed).choice(len(examples), size=min(n, len(examples)), replace=False)
    context, positives = positive_pairs(examples.subset(pick), seed=seed)
    return {
        "context_ids": tokenizer([" ; ".join(texts[c]) for c in context], truncation=True, max_length=context_len)["input_ids"],
        "item_ids": tokenizer(list(texts[positives]), truncation=True, max_length=item_len)["input_ids"],
        "item": positives.astype(np.int32),
    }


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
