"""Render the committed leaderboard as the README's results table: ``python -m coldstart.tools.report``.

The README quotes ``results/leaderboard.csv`` through this function, and a test checks that the
README's table is exactly what it renders, so the README can never drift from the results.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from ..config import project_root

TABLE_SEGMENTS = ("k=1", "k=3", "k=5", "cold-items")  # the columns of the README's table
BEGIN = "<!-- results:begin (python -m coldstart.tools.report) -->"
END = "<!-- results:end -->"


def markdown_table(board: pd.DataFrame, profile: str = "cpu", protocol: str = "coldstart") -> str:
    """NDCG@10 per segment plus cold-item Recall@20 and coverage@10 at k=1, one row per method."""
    # rows of other segments (the market and season groups of notebook 09) belong to other tables
    t = board[(board["profile"] == profile) & (board["protocol"] == protocol) & board["segment"].isin(TABLE_SEGMENTS)]
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
    """The command line: ``--help`` describes it; any other argument is an error (it used to be
    ignored, so a mistyped option printed the table as if it had been understood)."""
    parser = argparse.ArgumentParser(description="Print the README's results table from results/leaderboard.csv "
                                                 "(the committed reference run), between the README's markers.")
    parser.parse_args(argv)
    path = project_root() / "results" / "leaderboard.csv"
    print(BEGIN)
    print(markdown_table(pd.read_csv(path)))
    print(END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
