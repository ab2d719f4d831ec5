"""Render the committed leaderboard as the results tables: ``python -m coldstart.tools.report [--all]``.

The README quotes the headline methods of ``results/leaderboard.csv`` through :func:`markdown_table`
with :data:`HEADLINE`, and docs/results.md every method (``--all``); tests check that both tables are
exactly what it renders, so neither can drift from the results.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from ..config import project_root

TABLE_SEGMENTS = ("k=1", "k=3", "k=5", "cold-items")  # the columns of the README's table
BEGIN = "<!-- results:begin (python -m coldstart.tools.report) -->"
END = "<!-- results:end -->"
BEGIN_ALL = "<!-- results:begin (python -m coldstart.tools.report --all) -->"
# the README's table: the baselines of notebook 02, the TF-IDF baselines notebook 03 compares with
# (their texts with the price band, as validation chose there) and its retrievers, the comparison the
# course is about; the other chapters' rows are in docs/results.md
HEADLINE = ("popularity", "country-popularity", "item-knn", "tfidf", "zero-shot-lm", "id-part", "id-part+tfidf",
            "id-part+zero-shot-lm", "id-part+tfidf+new-slots", "tfidf+price", "id-part+tfidf+price",
            "id-part+tfidf+price+new-slots", "two-tower-text", "two-tower+id", "two-tower+id+new-slots")


def markdown_table(board: pd.DataFrame, profile: str = "cpu", protocol: str = "coldstart",
                   methods=None) -> str:
    """NDCG@10 per segment plus cold-item Recall@20 and coverage@10 at k=1, one row per method (of
    ``methods`` only, when given)."""
    # rows of other segments (the market and season groups of notebook 09) belong to other tables
    t = board[(board["profile"] == profile) & (board["protocol"] == protocol) & board["segment"].isin(TABLE_SEGMENTS)]
    if methods is not None:
        t = t[t["method"].isin(methods)]
    if t.empty:
        return "_(no results for this profile yet)_"
    wide = t.pivot_table(index=["method", "kind"], columns=["metric", "segment"], values="value", aggfunc="first")
    cols = {f"NDCG@10 {s}": ("ndcg@10", s) for s in TABLE_SEGMENTS}
    cols["Recall@20 cold-items"] = ("recall@20", "cold-items")
    cols["coverage@10 k=1"] = ("coverage@10", "k=1")
    out = pd.DataFrame({name: wide[key] if key in wide.columns else float("nan") for name, key in cols.items()})
    out = out.sort_values("NDCG@10 k=1", ascending=False).reset_index()
    header = "| " + " | ".join(out.columns) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(out.columns))) + "|"
    lines = [header, rule]
    for row in out.itertuples(index=False):
        cells = [str(v) if i < 2 else ("" if pd.isna(v) else f"{v:.4f}") for i, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """The command line: ``--help`` describes it, ``--all`` prints every method; any other argument is
    an error (a mistyped option must not print a table as if it had been understood)."""
    parser = argparse.ArgumentParser(description="Print a results table from results/leaderboard.csv (the committed "
                                                 "reference run), for the README or docs/results.md.")
    parser.add_argument("--all", action="store_true", help="every method (docs/results.md), not the README's headline")
    args = parser.parse_args(argv)
    board = pd.read_csv(project_root() / "results" / "leaderboard.csv", dtype={"method": str, "kind": str})
    print(BEGIN_ALL if args.all else BEGIN)
    print(markdown_table(board, methods=None if args.all else HEADLINE))
    print(END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
