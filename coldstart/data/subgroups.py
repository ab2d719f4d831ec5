"""Market and season subgroups of a protocol split: who a model learns from, who it is tested on.

The cold-start protocol (:mod:`coldstart.data.protocol`) tests a model on *all* new customers after the
cutoff, having trained it on *all* rows before. Two questions need narrower splits:

* **Transfer across markets.** Train on the customers of one market (the United Kingdom, nine in
  ten of the shop's customers) and test on new customers of the others. :func:`restrict_train`
  keeps only some countries' training rows; the evaluation cases are untouched, so a "new
  customer" is still one never seen before the cutoff *in any market*.
* **Drift across seasons.** The same model tested on the new customers of two periods (the
  Christmas peak against the autumn before it). :func:`case_group` keeps the cases whose customer
  is from some countries and whose first (context) invoice falls in ``[start, end)``.

:func:`case_group` renames the segments it keeps to say which group they belong to (``"market=non-UK
k=1"``, ``"season=Nov-Dec k=1"``) and :func:`with_groups` puts several groups into one split, so one
:func:`coldstart.evaluation.evaluate` call scores them all and every leaderboard row names its group::

    uk = restrict_train(split, countries=[UK])
    groups = with_groups(uk, case_group(uk, "market=UK", countries=[UK]),
                             case_group(uk, "market=non-UK", exclude=[UK]))
    evaluate(model, groups, segments=groups.segment_names)

Nothing here reads rows after the cutoff that the split did not already hold: the functions only
filter a split's own tables.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

from .protocol import NEW_USER_SEGMENTS, ColdStartSplit

UK = "United Kingdom"


def _countries_of(split: ColdStartSplit) -> set:
    return set(split.train["country"].astype(str)) | set(split.cases["country"].astype(str))


def _check_countries(split: ColdStartSplit, names: Iterable[str], argument: str) -> list:
    """The names as a list; a name that is no country of the split raises, with the closest ones."""
    if isinstance(names, str):
        raise TypeError(f"{argument} must be a list of country names, e.g. [{names!r}], not a string")
    names = [str(n) for n in names]
    known = _countries_of(split)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(f"{argument}: {name!r} is not a country of this split{hint} "
                             f"(countries: {', '.join(sorted(known))})")
    return names


def _country_mask(values: pd.Series, countries, exclude, split: ColdStartSplit) -> np.ndarray:
    if countries is not None and exclude is not None:
        raise ValueError("give countries (the ones to keep) or exclude (the ones to drop), not both")
    values = values.astype(str)
    if countries is not None:
        return values.isin(_check_countries(split, countries, "countries")).to_numpy()
    if exclude is not None:
        return (~values.isin(_check_countries(split, exclude, "exclude"))).to_numpy()
    return np.ones(len(values), dtype=bool)


def restrict_train(split: ColdStartSplit, countries: Optional[Sequence[str]] = None,
                   exclude: Optional[Sequence[str]] = None) -> ColdStartSplit:
    """A copy of ``split`` whose training rows are only those of some countries.

    Give ``countries`` (keep these) or ``exclude`` (drop these). The catalog keeps every item (a
    product sold before the cutoff only to other markets is still in the shop, it just has no
    purchases in the restricted training rows); its training statistics ``train_customers`` and
    ``train_invoices`` are recounted from the kept rows, so popularity, novelty and "no purchases
    yet" follow the restricted data. The cases are unchanged.

    Raises ``ValueError`` for a name that is no country of the split, for both or neither argument,
    or when no training row is left.
    """
    if countries is None and exclude is None:
        raise ValueError("restrict_train needs countries=[...] (to keep) or exclude=[...] (to drop)")
    keep = _country_mask(split.train["country"], countries, exclude, split)
    if not keep.any():
        raise ValueError(f"No training row is left for countries={countries}, exclude={exclude}")
    return split.with_train(split.train[keep])


def case_group(split: ColdStartSplit, label: str, countries: Optional[Sequence[str]] = None,
               exclude: Optional[Sequence[str]] = None, start=None, end=None,
               segments: Sequence[str] = NEW_USER_SEGMENTS) -> pd.DataFrame:
    """The cases of ``segments`` whose customer is from ``countries`` (or not from ``exclude``) and
    whose first invoice (the context's date) is in ``[start, end)``, renamed ``"<label> <segment>"``.

    Returns a cases table (the columns of ``split.cases``) for :func:`with_groups`. Dates are
    anything ``pd.Timestamp`` reads; ``None`` leaves that side open. Raises ``ValueError`` for an
    empty label, an unknown country or segment, or when no case is left (a misspelt date range
    would otherwise pass silently).
    """
    label = str(label).strip()
    if not label:
        raise ValueError("label must name the group, e.g. 'market=non-UK' or 'season=Nov-Dec'")
    unknown = [s for s in segments if s not in split.segment_names]
    if unknown:
        raise ValueError(f"Unknown segment(s) {unknown}; this split has {split.segment_names}")
    cases = split.cases
    keep = cases["segment"].isin(list(segments)).to_numpy().copy()
    keep &= _country_mask(cases["country"], countries, exclude, split)
    dates = pd.to_datetime(cases["date"])
    if start is not None:
        keep &= (dates >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (dates < pd.Timestamp(end)).to_numpy()
    out = cases[keep].copy()
    if out.empty:
        raise ValueError(f"Group {label!r} has no case (countries={countries}, exclude={exclude}, "
                         f"start={start}, end={end}, segments={list(segments)})")
    out["segment"] = label + " " + out["segment"]
    return out.reset_index(drop=True)


def with_groups(split: ColdStartSplit, *groups: pd.DataFrame) -> ColdStartSplit:
    """A copy of ``split`` whose cases are exactly the given groups (from :func:`case_group`).

    Training rows and catalog are ``split``'s. Two groups with the same segment name would mix
    their users in one segment, so that raises ``ValueError``.
    """
    if not groups:
        raise ValueError("with_groups needs at least one group from case_group()")
    names = [set(g["segment"]) for g in groups]
    seen: set = set()
    for group_names in names:
        clash = seen & group_names
        if clash:
            raise ValueError(f"Two groups share the segment name(s) {sorted(clash)}: give them different labels")
        seen |= group_names
    cases = pd.concat(groups, ignore_index=True)
    return dataclasses.replace(split, cases=cases)


def group_sizes(split: ColdStartSplit) -> pd.DataFrame:
    """Users per segment of a grouped split, as a table with the group and ``k`` as columns
    (``"market=non-UK k=1"`` -> row ``market=non-UK``, column ``k=1``; a plain ``"k=1"`` goes to the
    row ``all``)."""
    counts = split.cases.groupby("segment", sort=False).size()
    parts = [name.rpartition(" ") for name in counts.index]
    table = pd.DataFrame({"group": [p[0] or "all" for p in parts], "segment": [p[2] for p in parts],
                          "users": counts.to_numpy()})
    return table.pivot(index="group", columns="segment", values="users").reindex(
        list(dict.fromkeys(table["group"]))).fillna(0).astype(int)
