"""Figures the notebooks share. Each function draws on a new (or given) matplotlib axes and returns it."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd


def _axes(ax=None, figsize=(6, 3.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def long_tail(clean: pd.DataFrame, ax=None):
    """Item popularity (distinct customers) against popularity rank, log-log: the long tail."""
    ax = _axes(ax)
    counts = np.sort(clean.groupby("item")["customer"].nunique().to_numpy())[::-1]
    ax.loglog(np.arange(1, len(counts) + 1), counts)
    top = counts[: len(counts) // 10].sum() / counts.sum()
    ax.set(xlabel="item rank", ylabel="customers who bought it",
           title=f"Long tail: top 10% of items take {top:.0%} of purchases")
    return ax


def customer_activity(clean: pd.DataFrame, ax=None):
    """Histogram of invoices per customer (log x): most customers buy rarely."""
    ax = _axes(ax)
    inv = clean.groupby("customer")["invoice"].nunique()
    bins = np.unique(np.round(np.logspace(0, np.log10(inv.max() + 1), 30)))
    ax.hist(inv, bins=bins)
    ax.set_xscale("log")
    ax.set(xlabel="invoices per customer", ylabel="customers",
           title=f"Median customer: {inv.median():.0f} invoices; {(inv == 1).mean():.0%} bought once")
    return ax


def newcomers_per_month(clean: pd.DataFrame, cutoff=None, ax=None):
    """New customers (first invoice) and new items (first sale) per month, with the cutoff marked."""
    ax = _axes(ax, figsize=(7, 3.5))
    first_c = clean.groupby("customer")["date"].min().dt.to_period("M").value_counts().sort_index()
    first_i = clean.groupby("item")["date"].min().dt.to_period("M").value_counts().sort_index()
    months = first_c.index.union(first_i.index)
    x = np.arange(len(months))
    ax.bar(x - 0.2, first_c.reindex(months, fill_value=0), width=0.4, label="new customers")
    ax.bar(x + 0.2, first_i.reindex(months, fill_value=0), width=0.4, label="new items")
    ax.set_xticks(x, [m.strftime("%b\n%y") for m in months], fontsize=7)
    if cutoff is not None:
        pos = list(months).index(pd.Timestamp(cutoff).to_period("M")) - 0.5
        ax.axvline(pos, color="k", ls="--")
        ax.text(pos + 0.1, ax.get_ylim()[1] * 0.9, "cutoff T", fontsize=8)
    ax.set(ylabel="count", title="Newcomers per month (Dec 2010: everyone is new)")
    ax.legend(fontsize=8)
    return ax


def protocol_timeline(test_split, valid_split=None, ax=None):
    """The protocol drawn on a time line: training windows, cutoffs, evaluation windows."""
    import matplotlib.dates as mdates

    ax = _axes(ax, figsize=(8, 2.4))
    rows = [("test", test_split)] + ([("validation", valid_split)] if valid_split is not None else [])
    start = test_split.train["date"].min()
    for y, (label, s) in enumerate(rows):
        ax.barh(y, s.cutoff - start, left=start, color="tab:blue", alpha=0.6)
        ax.barh(y, s.end - s.cutoff, left=s.cutoff, color="tab:orange", alpha=0.8)
        seg = s.cases[s.cases["segment"] == "k=1"]
        ax.text(s.cutoff, y, f"train < {s.cutoff.date()}  ", ha="right", va="center", fontsize=8)
        ax.text(s.cutoff, y, f" {len(seg)} new users", ha="left", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_ylim(-0.5, len(rows) - 0.1)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %y"))
    ax.set_title("Blue: training rows. Orange: new users' context and targets.", fontsize=9)
    return ax


def metric_by_k(board: pd.DataFrame, metric: str = "ndcg@10", ax=None, segments=("k=1", "k=3", "k=5")):
    """One line per method: ``metric`` against the number of context items, with 95% intervals."""
    ax = _axes(ax)
    t = board[(board["metric"] == metric) & board["segment"].isin(segments)]
    import matplotlib.pyplot as plt

    colors = plt.get_cmap("tab20").colors
    for n, (method, g) in enumerate(t.groupby("method", sort=False)):
        g = g.set_index("segment").reindex(list(segments))
        ks = [int(s.split("=")[1]) for s in segments]
        err = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]])
        ax.errorbar(ks, g["value"], yerr=np.nan_to_num(err), marker="o", capsize=3, label=method,
                    color=colors[(2 * n) % 20 if n < 10 else (2 * n + 1) % 20])
    ax.set(xlabel="context items k", ylabel=metric, xticks=[int(s.split("=")[1]) for s in segments],
           title=f"{metric} of new users by k")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return ax


def metric_by_segment(board: pd.DataFrame, segments: Sequence[str], metric: str = "ndcg@10", ax=None,
                      methods: Optional[Sequence[str]] = None):
    """One marker per method and segment, side by side, with 95% intervals: a metric across groups of
    users (markets, seasons), the number of users under each group's name.

    ``board`` is a leaderboard-like table (``method, segment, metric, value, ci_low, ci_high`` and
    optionally ``n_users``); ``methods`` picks and orders the methods (default: all, in order of
    appearance).
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax, figsize=(8, 3.8))
    t = board[(board["metric"] == metric) & board["segment"].isin(segments)]
    methods = list(methods) if methods is not None else list(dict.fromkeys(t["method"]))
    colors = plt.get_cmap("tab20").colors
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(segments))
    for n, method in enumerate(methods):
        g = t[t["method"] == method].set_index("segment").reindex(list(segments))
        err = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]])
        ax.errorbar(x - 0.4 + width * (n + 0.5), g["value"], yerr=np.nan_to_num(err), fmt="o", capsize=2,
                    label=method, color=colors[(2 * n) % 20 if n < 10 else (2 * n + 1) % 20])
    labels = list(segments)
    if "n_users" in t.columns:
        n_users = t.groupby("segment")["n_users"].max()
        labels = [f"{s}\n({int(n_users[s])} users)" if s in n_users.index else s for s in segments]
    ax.set_xticks(x, labels, fontsize=8)
    for edge in x[:-1] + 0.5:
        ax.axvline(edge, color="0.85", lw=0.8)
    ax.set(ylabel=metric, title=f"{metric} by group of new users (95% intervals)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return ax


def metric_bars(board: pd.DataFrame, metric: str, segment: str, ax=None):
    """Horizontal bars of one metric in one segment, per method, with 95% intervals."""
    ax = _axes(ax)
    t = board[(board["metric"] == metric) & (board["segment"] == segment)].sort_values("value")
    err = np.vstack([t["value"] - t["ci_low"], t["ci_high"] - t["value"]])
    ax.barh(t["method"], t["value"], xerr=np.nan_to_num(err), capsize=3)
    ax.set(xlabel=metric, title=f"{metric}, segment {segment}")
    return ax


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = 10, ax=None):
    """Calibration curve: mean predicted probability against observed frequency per bin."""
    ax = _axes(ax, figsize=(4, 4))
    labels, probs = np.asarray(labels), np.asarray(probs)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges) - 1, 0, bins - 1)
    mean_p = np.array([probs[which == b].mean() if (which == b).any() else np.nan for b in range(bins)])
    freq = np.array([labels[which == b].mean() if (which == b).any() else np.nan for b in range(bins)])
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    ax.plot(mean_p, freq, "o-", label="model")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title="Calibration")
    ax.legend()
    return ax


def side_by_side(split, segment, recommendations: dict, rows: Sequence[int], n: int = 5) -> pd.DataFrame:
    """A table of a few cases: context item texts beside each method's top-``n`` item texts.

    ``recommendations`` maps method name -> (n_cases, >=n) array of catalog positions; hits (items
    the user really bought later) are marked with a check mark.
    """
    texts = np.asarray(split.texts())
    out = []
    for r in rows:
        tg = set(segment.targets[r].indices)
        rec = {"user": int(segment.users[r]), "context": " | ".join(texts[segment.context[r]])}
        for name, top in recommendations.items():
            rec[name] = "\n".join(("✓ " if i in tg else "  ") + texts[i] for i in top[r, :n] if i >= 0)
        out.append(rec)
    return pd.DataFrame(out).set_index("user")


def latency_distribution(times: dict, targets: Optional[dict] = None, ax=None):
    """Histograms of serving latencies in milliseconds (log x), one per path, with p50 and p95 marked.

    ``times`` maps a path name (``"click"``, ``"query"``) to an array of milliseconds; ``targets``
    optionally maps the same names to a p95 target, drawn as a dashed line.
    """
    ax = _axes(ax, figsize=(7, 3.5))
    all_ms = np.concatenate([np.asarray(v, float) for v in times.values()])
    bins = np.logspace(np.log10(max(all_ms.min(), 1e-3) * 0.9), np.log10(all_ms.max() * 1.1), 40)
    for (name, ms), colour in zip(times.items(), ("tab:blue", "tab:orange", "tab:green", "tab:red")):
        ms = np.asarray(ms, float)
        p50, p95 = np.percentile(ms, [50, 95])
        label = f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (n={len(ms)})"
        ax.hist(ms, bins=bins, alpha=0.6, color=colour, label=label)
        ax.axvline(p95, color=colour, lw=1)
        if targets and name in targets:
            ax.axvline(targets[name], color=colour, ls="--", lw=1)
    ax.set_xscale("log")
    ax.set(xlabel="milliseconds per call (log scale)", ylabel="calls",
           title="Serving latency (solid: p95, dashed: p95 target)")
    ax.legend(fontsize=8)
    return ax


def forest(comparisons: pd.DataFrame, segments: Sequence[str] = ("k=1", "k=3", "k=5"), label: str = "comparison",
           metric: str = "NDCG@10", title: Optional[str] = None):
    """Paired differences with their 95% intervals, one panel per segment and one row per comparison.

    ``comparisons`` holds rows of :func:`coldstart.evaluation.compare` (``segment, diff, ci_low,
    ci_high``) with a ``label`` column naming each comparison (``"a − b"``). Green: the interval is
    above zero; red: below; grey: it includes zero. Returns the figure.
    """
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(comparisons[label]))
    fig, axes = plt.subplots(1, len(segments), figsize=(3.6 * len(segments), 1.2 + 0.38 * len(names)), sharey=True,
                             squeeze=False)
    for ax, seg in zip(axes[0], segments):
        rows = comparisons[comparisons["segment"] == seg].set_index(label)
        for y, name in enumerate(names):
            if name not in rows.index:
                continue
            r = rows.loc[name]
            color = "tab:green" if r["ci_low"] > 0 else "tab:red" if r["ci_high"] < 0 else "tab:gray"
            ax.errorbar(r["diff"], y, xerr=[[r["diff"] - r["ci_low"]], [r["ci_high"] - r["diff"]]], fmt="o",
                        color=color, capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(seg)
        ax.set_xlabel(f"difference in {metric}")
    axes[0][0].set_yticks(np.arange(len(names)), names)
    axes[0][0].invert_yaxis()
    if title:
        fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


def heatmap(table: pd.DataFrame, title: str = "", fmt: str = ".4f", ax=None, best: str = "max", marked=()):
    """A grid of scores (rows x columns, e.g. a pivot table of a search) as coloured cells with their values.

    Rows of a MultiIndex are labelled ``name=value, ...``; a plain index is named on its axis. The
    best cell (``best``: ``"max"``, ``"min"`` or ``None``) is outlined, so the choice a search made
    is read off the picture. Cells named in ``marked`` (``(row, column)`` labels, e.g. the ties of
    the best) get a ``*`` after their value. Returns the axes.
    """
    from matplotlib.patches import Rectangle

    values = table.to_numpy(dtype=float)
    if values.size == 0 or not np.isfinite(values).any():
        raise ValueError("heatmap needs a table with at least one finite value")
    ax = _axes(ax, figsize=(1.8 + 1.1 * table.shape[1], 0.9 + 0.45 * table.shape[0]))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    middle, marked = np.nanmean(values), set(marked)
    for i, row in enumerate(table.index):
        for j, column in enumerate(table.columns):
            star = " *" if (row, column) in marked else ""
            ax.text(j, i, format(values[i, j], fmt) + star, ha="center", va="center",
                    color="white" if values[i, j] < middle else "black", fontsize=9)

    def show(v):
        return f"{v:g}" if isinstance(v, (float, np.floating)) else str(v)

    def labels(index):
        if isinstance(index, pd.MultiIndex):
            return [", ".join(f"{n}={show(v)}" for n, v in zip(index.names, key)) for key in index]
        return [show(v) for v in index]

    ax.set_xticks(range(values.shape[1]), labels(table.columns))
    ax.set_yticks(range(values.shape[0]), labels(table.index))
    ax.set_xlabel(table.columns.name if not isinstance(table.columns, pd.MultiIndex) and table.columns.name else "")
    ax.set_ylabel(table.index.name if not isinstance(table.index, pd.MultiIndex) and table.index.name else "")
    if best in ("max", "min"):
        i, j = np.unravel_index(np.nanargmax(values) if best == "max" else np.nanargmin(values), values.shape)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5))
    ax.figure.colorbar(image, ax=ax)
    ax.set_title(title)
    return ax


def two_architectures():
    """A diagram of notebook 03's two BERT models: the cross-encoder reads context and candidate together
    (one pass per pair), the two-tower model reads them apart (items once, a user in one pass). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))

    def box(ax, x, y, text, color="#dde8f5", w=0.36):
        ax.text(x, y, text, ha="center", va="center", fontsize=9, wrap=True,
                bbox=dict(boxstyle="round,pad=0.45", fc=color, ec="0.35"))

    def arrow(ax, a, b):
        ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.3", lw=1.3))

    ax = axes[0]
    box(ax, 0.5, 0.88, "[CLS] context [SEP] candidate [SEP]", "#f6e7d0")
    box(ax, 0.5, 0.58, "BERT (one pass over the pair)")
    box(ax, 0.5, 0.28, "one logit  →  P(buy) = sigmoid(logit)", "#e2f0d9")
    arrow(ax, (0.5, 0.81), (0.5, 0.65))
    arrow(ax, (0.5, 0.51), (0.5, 0.35))
    ax.text(0.5, 0.06, "scoring a catalog of N products for one user: N passes of BERT",
            ha="center", fontsize=8.5, style="italic")
    ax.set_title("cross-encoder (the CTR model, Part A)")

    ax = axes[1]
    box(ax, 0.25, 0.88, "context text\n(the user's clicks)", "#f6e7d0")
    box(ax, 0.75, 0.88, "item text\n(every product)", "#f6e7d0")
    box(ax, 0.25, 0.58, "BERT + mean pool")
    box(ax, 0.75, 0.58, "BERT + mean pool\n(the same weights)")
    box(ax, 0.5, 0.28, "score = u · v / τ", "#e2f0d9")
    arrow(ax, (0.25, 0.80), (0.25, 0.66))
    arrow(ax, (0.75, 0.80), (0.75, 0.67))
    arrow(ax, (0.25, 0.51), (0.45, 0.34))
    arrow(ax, (0.75, 0.49), (0.55, 0.34))
    ax.text(0.14, 0.42, "u", fontsize=11, style="italic")
    ax.text(0.84, 0.42, "v", fontsize=11, style="italic")
    ax.text(0.5, 0.06, "item vectors computed once (an index); one user: one pass + one matrix product",
            ha="center", fontsize=8.5, style="italic")
    ax.set_title("two-tower retriever (Part B)")
    for ax in axes:
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.axis("off")
    fig.tight_layout()
    return fig
