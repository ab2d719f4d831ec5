"""A customer's visit: a query and a growing list of clicks, and the widget demo of notebook 07."""

from __future__ import annotations

import time
from typing import Optional

import pandas as pd

from .recommender import Recommender, shorten


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
            b = W.Button(description=f"{rank}. {shorten(row.text, 40)}", tooltip=row.reason,
                         layout=W.Layout(width="60%"))
            b.on_click(lambda _b, item=row.item_id: self.click(item))
            buttons.append(W.HBox([b, W.HTML(f"<small>{html.escape(row.reason)}</small>")]))
        self.items.children = buttons
        action, ms = self.session.timings[-1]
        rec = self.session.rec
        clicked = ", ".join(shorten(rec.texts[rec.position(i)], 30) for i in self.session.clicks if rec.knows(i))
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
