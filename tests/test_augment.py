"""Data augmentation: what each augmentation does, exact budgets, determinism, and no leakage."""

import dataclasses
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CUTOFF

from coldstart.data import protocol
from coldstart.training import augment as A
from coldstart.training import pairs


def _ex(contexts, targets):
    n = len(contexts)
    return pairs.Examples(context=[np.array(c, dtype=np.int64) for c in contexts],
                          targets=[np.array(t, dtype=np.int64) for t in targets],
                          country=np.array(["United Kingdom"] * n, dtype=object),
                          date=np.array(["2011-01-10"] * n, dtype="datetime64[ns]"))


def _codes(split, positions):
    return [str(split.item_ids[i]) for i in positions]


# -- sequence augmentations ------------------------------------------------------------------------
def test_crop_keeps_a_contiguous_window_and_moves_the_rest_to_the_targets():
    rng = np.random.default_rng(0)
    for _ in range(50):
        ctx, tgt = A.crop([1, 2, 3, 4, 5], [9, 8], rng, keep=0.6)
        assert len(ctx) == 3                                  # floor(0.6 * 5)
        start = [1, 2, 3, 4, 5].index(ctx[0])
        assert ctx.tolist() == [1, 2, 3, 4, 5][start:start + 3]
        assert set(tgt) == {9, 8} | ({1, 2, 3, 4, 5} - set(ctx.tolist()))
        assert len(tgt) == len(set(tgt.tolist()))
    ctx, tgt = A.crop([4, 7], [1], rng, keep=0.99)            # never the whole context
    assert len(ctx) == 1 and set(tgt) == {1} | ({4, 7} - set(ctx))
    ctx, tgt = A.crop([3], [1], rng)                          # one click: nothing to crop
    assert ctx.tolist() == [3] and tgt.tolist() == [1]


def test_mask_hides_at_least_one_click_keeps_one_and_keeps_order():
    rng = np.random.default_rng(1)
    sizes = set()
    for _ in range(200):
        ctx, tgt = A.mask([1, 2, 3, 4, 5], [9], rng, p=0.3)
        assert 1 <= len(ctx) <= 4
        assert ctx.tolist() == sorted(ctx.tolist())            # the kept clicks stay in click order
        assert set(tgt) == {9} | ({1, 2, 3, 4, 5} - set(ctx.tolist()))
        sizes.add(len(ctx))
    assert len(sizes) >= 3                                    # random, not a fixed pattern
    ctx, _ = A.mask([1, 2], [9], rng, p=1.0)
    assert len(ctx) == 1
    ctx, _ = A.mask([1, 2], [9], rng, p=0.0)
    assert len(ctx) == 1


def test_reorder_changes_the_order_of_one_window_only():
    rng = np.random.default_rng(2)
    for _ in range(50):
        ctx, tgt = A.reorder([1, 2, 3, 4, 5], [9], rng, window=0.6)
        assert sorted(ctx.tolist()) == [1, 2, 3, 4, 5] and tgt.tolist() == [9]
        changed = np.flatnonzero(ctx != np.array([1, 2, 3, 4, 5]))
        assert 2 <= len(changed) and changed.max() - changed.min() < 3   # inside one window of 3
    ctx, _ = A.reorder([6, 7], [9], rng)
    assert ctx.tolist() == [7, 6]                             # two clicks: the only other order


# -- text-side augmentations -----------------------------------------------------------------------
def test_word_dropout_keeps_a_subsequence_of_the_words():
    rng = np.random.default_rng(3)
    text = "white hanging heart t-light holder"
    outs = {A.word_dropout(text, rng, p=0.4) for _ in range(100)}
    assert len(outs) > 5
    for out in outs:
        words = out.split()
        assert 1 <= len(words) <= 5
        it = iter(text.split())
        assert all(w in it for w in words)                    # same words, same order
    assert A.word_dropout(text, rng, p=0.0) == text
    assert len(A.word_dropout(text, rng, p=1.0).split()) == 1
    assert A.word_dropout("mug", rng, p=1.0) == "mug"


def test_neighbour_word_swap_takes_words_from_the_neighbours():
    rng = np.random.default_rng(4)
    text = "red retrospot cake stand"
    neighbours = ["pack of 72 retrospot cake cases", "jumbo bag red retrospot"]
    vocab = set(" ".join(neighbours).split())
    for _ in range(50):
        out = A.neighbour_word_swap(text, neighbours, rng, p=0.5).split()
        assert len(out) == 4
        changed = [(a, b) for a, b in zip(text.split(), out) if a != b]
        assert 1 <= len(changed) <= 2                         # round(0.5 * 4) = 2 places, a swap may keep a word
        assert all(b in vocab for _, b in changed)
    assert A.neighbour_word_swap(text, [], rng) == text


def test_text_neighbours_are_the_most_similar_allowed_items(tiny_split):
    near, sims = A.text_neighbours(tiny_split.texts(), n=2)
    assert near.shape == sims.shape == (10, 2)
    assert all(i not in row for i, row in enumerate(near))     # never itself
    assert (np.diff(sims, axis=1) <= 0).all()
    # "red retrospot mug" (10008) is closest to another red retrospot item
    assert _codes(tiny_split, near[7][:1])[0] in {"10001", "10002", "10005"}
    known = ~tiny_split.catalog["cold"].to_numpy()
    near, _ = A.text_neighbours(tiny_split.texts(), n=9, candidates=known)
    assert not set(near[near >= 0].tolist()) & {7, 8, 9}      # cold items are no neighbours
    assert (near[:7] == -1).sum(axis=1).tolist() == [3] * 7   # 6 other known items, 9 places
    assert (near[7:] >= 0).sum(axis=1).tolist() == [7] * 3


def test_context_strings_use_rewritten_texts():
    ex = A.Augmented(context=[np.array([0, 1]), np.array([2])], targets=[np.array([3]), np.array([4])],
                     country=np.array(["UK", "UK"], dtype=object),
                     date=np.array(["2011-01-01"] * 2, dtype="datetime64[ns]"),
                     kind=np.array(["original", "word_dropout"], dtype=object), texts=[None, ["white heart"]])
    texts = ["a b", "c d", "white hanging heart", "x", "y"]
    assert A.context_strings(ex, texts) == ["a b ; c d", "white heart"]
    assert A.context_strings(_ex([[2, 0]], [[1]]), texts, sep=" | ") == ["white hanging heart | a b"]


# -- new pseudo-users ------------------------------------------------------------------------------
def test_sub_baskets_are_parts_of_real_training_invoices(tiny_split):
    ex = A.sub_baskets(tiny_split, 200, seed=0, max_k=5)
    assert len(ex) == 200 and set(ex.kind) == {"sub_baskets"}
    # the only training invoices with three or more items
    invoices = [["10001", "10002", "10003"], ["10001", "10003", "10004", "10005", "10006", "10007"]]
    for ctx, tgt in zip(ex.context, ex.targets):
        basket = _codes(tiny_split, np.concatenate([ctx, tgt]))
        source = next(inv for inv in invoices if set(basket) <= set(inv))
        assert basket == [i for i in source if i in basket]   # line order kept
        assert 2 <= len(basket) < len(source) and len(ctx) >= 1 and len(tgt) >= 1
    assert (ex.date < np.datetime64(tiny_split.cutoff)).all()
    sizes = {len(c) + len(t) for c, t in zip(ex.context, ex.targets)}
    assert sizes == {2, 3, 4, 5}


def test_synthetic_plan_pairs_rare_items_with_well_known_neighbours(tiny_split):
    plan = A.synthetic_plan(tiny_split, max_invoices=1, neighbours=1, min_similarity=0.05)
    got = {c: n for c, n in zip(_codes(tiny_split, plan["item"]), _codes(tiny_split, plan["neighbour"]))}
    # rare (1 training invoice): 10004-10007; well-known (2): 10001-10003. "lunch bag black skull"
    # shares no word with a well-known item, so it gets no neighbour.
    assert got == {"10004": "10003", "10005": "10001", "10007": "10001"}
    assert not plan["cold"].any() and (plan["item_invoices"] == 1).all() and (plan["neighbour_invoices"] == 2).all()
    cold = A.synthetic_plan(tiny_split, max_invoices=1, neighbours=1, min_similarity=0.05, include_cold=True)
    extra = set(_codes(tiny_split, cold["item"])) - set(got)
    assert extra == {"10008", "10010"}                        # red retrospot mug, zinc heart lattice t-light holder
    assert cold.loc[cold["cold"], "item_invoices"].eq(0).all()


@pytest.mark.parametrize("mode", A.MODES)
def test_synthetic_interactions_modes(tiny_split, mode):
    plan = A.synthetic_plan(tiny_split, max_invoices=1, neighbours=1, min_similarity=0.05)
    ex = A.synthetic_interactions(tiny_split, plan, 30, seed=0, mode=mode)
    assert len(ex) == 30 and set(ex.kind) == {"synthetic"}
    rare = _codes(tiny_split, [t[0] for t in ex.targets])
    assert set(rare) == {"10004", "10005", "10007"}
    assert max(rare.count(r) for r in set(rare)) - min(rare.count(r) for r in set(rare)) <= 1   # in rounds
    pairs_ = dict(zip(_codes(tiny_split, plan["item"]), _codes(tiny_split, plan["neighbour"])))
    invoices = [["10001", "10002", "10003"], ["10001", "10003", "10004", "10005", "10006", "10007"]]
    for ctx, tgt in zip(ex.context, ex.targets):
        item = _codes(tiny_split, tgt[:1])[0]
        nb, c, t = pairs_[item], _codes(tiny_split, ctx), _codes(tiny_split, tgt)
        assert item not in c and nb not in c and len(c) >= 1
        fits = []
        for source in (inv for inv in invoices if nb in inv):   # a real invoice holding the neighbour
            others = [i for i in source if i not in (item, nb)]
            rest = others[len(c):]
            expected = {"only": [item], "add": [item, *rest, nb], "replace": [item, *rest]}[mode]
            fits.append(c == others[: len(c)] and t == expected)  # its first items (line order) -> ...
        assert any(fits)


def test_synthetic_with_nothing_to_do_says_how_to_fix_it(tiny_split):
    plan = A.synthetic_plan(tiny_split)                       # max_invoices=2: nothing is well known
    assert plan.empty
    with pytest.raises(ValueError, match="max_invoices"):
        A.synthetic_interactions(tiny_split, plan, 5)
    assert len(A.synthetic_interactions(tiny_split, plan, 0)) == 0
    with pytest.raises(ValueError, match="mode"):
        A.synthetic_interactions(tiny_split, plan, 0, mode="swap")


# -- the entry point -------------------------------------------------------------------------------
TINY_OPTS = {"synthetic": {"max_invoices": 1, "min_similarity": 0.05}}


def _tiny_pool(tiny_split):
    return pairs.training_examples(tiny_split, seed=0, per_invoice=3)


def test_augment_fills_the_budget_exactly(tiny_split):
    pool = _tiny_pool(tiny_split)
    ex, kinds = A.augment(pool, tiny_split, "all", total=103, original=0.3, seed=0, options=TINY_OPTS,
                          return_kinds=True)
    assert kinds == A.AUGMENTATIONS and len(ex) == 103
    counts = pd.Series(ex.kind).value_counts()
    assert counts["original"] == 31                           # round(0.3 * 103)
    per_kind = counts.drop("original")
    assert set(per_kind.index) == set(A.AUGMENTATIONS) and per_kind.sum() == 72
    assert per_kind.max() - per_kind.min() <= 1
    assert all(len(c) >= 1 and len(t) >= 1 for c, t in zip(ex.context, ex.targets))
    texts = [t for t, k in zip(ex.texts, ex.kind) if k in A.TEXT_AUGMENTATIONS]
    assert all(t is not None for t in texts)
    assert all(t is None for t, k in zip(ex.texts, ex.kind) if k not in A.TEXT_AUGMENTATIONS)


def test_augment_without_kinds_is_the_same_budget_of_originals_in_rounds(tiny_split):
    pool = _ex([[0], [1], [2, 3], [4], [5, 6]], [[1], [2], [4], [5], [0]])   # five distinct examples
    ex = A.augment(pool, tiny_split, (), total=4 * len(pool) + 1, seed=0)
    assert set(ex.kind) == {"original"} and len(ex) == 4 * len(pool) + 1
    key = [tuple(c) + (-1,) + tuple(t) for c, t in zip(ex.context, ex.targets)]
    counts = pd.Series(key).value_counts()
    assert counts.max() - counts.min() <= 1                   # every example once before any twice
    assert len(A.augment(pool, tiny_split, total=0)) == 0


def test_augment_kinds_and_groups(tiny_split):
    pool = _tiny_pool(tiny_split)
    ex, kinds = A.augment(pool, tiny_split, ["sequence", "crop", "word_dropout"], total=40, seed=0, return_kinds=True)
    assert kinds == ("crop", "mask", "reorder", "word_dropout")
    assert set(ex.kind) == {"original", *kinds}
    assert A.resolve_kinds("text") == A.TEXT_AUGMENTATIONS and A.resolve_kinds(None) == ()
    with pytest.raises(ValueError, match="Unknown augmentation 'cropp'"):
        A.augment(pool, tiny_split, ["cropp"], total=10)
    with pytest.raises(ValueError, match="Unknown option"):
        A.augment(pool, tiny_split, ["crop"], total=10, options={"crop": {"ratio": 0.5}})
    with pytest.raises(ValueError, match="unknown augmentation"):
        A.augment(pool, tiny_split, ["crop"], total=10, options={"shuffle": {}})
    with pytest.raises(ValueError, match="original"):
        A.augment(pool, tiny_split, ["crop"], total=10, original=1.5)
    with pytest.raises(ValueError, match="empty"):
        A.augment(pool.subset([]), tiny_split, ["crop"], total=10)


def test_augment_is_deterministic_under_a_seed(valid_split):
    pool = pairs.training_examples(valid_split, seed=0, max_examples=400)
    run = lambda seed: A.augment(pool, valid_split, "all", total=600, seed=seed)  # noqa: E731
    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x, y) for x, y in zip(a.context, b.context))
    assert all(np.array_equal(x, y) for x, y in zip(a.targets, b.targets))
    assert a.texts == b.texts and list(a.kind) == list(b.kind)
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a.context, c.context))
    # one kind's draws do not depend on which other kinds are asked for
    alone = A.augment(pool, valid_split, ["crop"], total=600, original=0.5, seed=7)
    crops_alone = Counter(tuple(x) for x, k in zip(alone.context, alone.kind) if k == "crop")
    crops_all = Counter(tuple(x) for x, k in zip(a.context, a.kind) if k == "crop")
    assert 0 < sum(crops_all.values()) < sum(crops_alone.values())
    assert not crops_all - crops_alone                        # the first draws of the same stream


def test_no_leakage_window_rows_do_not_change_anything(tiny_clean):
    """Rewrite every row at or after the cutoff (other customers, invoices, quantities, and new
    products): the augmented training set must not change by one item or word."""
    base = protocol.make_split(tiny_clean, cutoff=TINY_CUTOFF)
    other = tiny_clean.copy()
    after = other["date"] >= pd.Timestamp(TINY_CUTOFF)
    other.loc[after, "customer"] = other.loc[after, "customer"] + 100
    other.loc[after, "invoice"] = "9" + other.loc[after, "invoice"]
    other.loc[after, "quantity"] = 7
    extra = other[after].head(3).assign(item="20001", description="RED RETROSPOT CAKE TIN",
                                        line=lambda d: d["line"] + 1000)
    other = pd.concat([other, extra], ignore_index=True)
    changed = protocol.make_split(other, cutoff=TINY_CUTOFF)
    assert changed.n_items == base.n_items + 1                # a new cold product, last in the catalog
    outs = [A.augment(_tiny_pool(s), s, "all", total=80, seed=3, options=TINY_OPTS) for s in (base, changed)]
    a, b = outs
    assert [_codes(base, c) for c in a.context] == [_codes(changed, c) for c in b.context]
    assert [_codes(base, t) for t in a.targets] == [_codes(changed, t) for t in b.targets]
    assert a.texts == b.texts and list(a.country) == list(b.country)


def test_no_leakage_on_the_real_validation_split(valid_split):
    pool = pairs.training_examples(valid_split, seed=0, max_examples=500)
    ex = A.augment(pool, valid_split, "all", total=3000, seed=0)
    cold = set(np.flatnonzero(valid_split.catalog["cold"].to_numpy()))
    assert len(cold) > 100
    for c, t in zip(ex.context, ex.targets):
        assert not (set(c.tolist()) | set(t.tolist())) & cold    # no product first sold after the cutoff
    assert (ex.date < np.datetime64(valid_split.cutoff)).all()      # every example dates from before it
    assert valid_split.end == pd.Timestamp(protocol.TEST_CUTOFF)    # and the split holds no test-period row
    # words come only from products sold before the cutoff
    cold_words = set(" ".join(valid_split.texts(sorted(cold))).split())
    known_words = set(" ".join(valid_split.texts(sorted(set(range(valid_split.n_items)) - cold))).split())
    only_cold = cold_words - known_words
    assert only_cold
    used = {w for t in ex.texts if t is not None for s in t for w in s.split()}
    assert not used & only_cold
    # the opt-in: cold products enter through their catalog text, as synthetic targets only
    opt = A.augment(pool, valid_split, ["synthetic"], total=2000, original=0.0, seed=0,
                    options={"synthetic": {"include_cold": True}})
    targets = [int(t[0]) for t in opt.targets]
    assert set(targets) & cold and not {i for c in opt.context for i in c.tolist()} & cold


def test_scarce_split_keeps_a_share_of_training_customers(valid_split):
    small = A.scarce_split(valid_split, customers=0.2, seed=0)
    n_all, n_small = valid_split.train["customer"].nunique(), small.train["customer"].nunique()
    assert n_small == round(0.2 * n_all)
    assert set(small.train["customer"]) <= set(valid_split.train["customer"])
    assert len(small.train) == valid_split.train["customer"].isin(set(small.train["customer"])).sum()
    assert small.n_items == valid_split.n_items and small.cases.equals(valid_split.cases)
    assert (small.catalog["train_invoices"].to_numpy() == A.invoice_counts(small)).all()
    assert (small.catalog["train_invoices"] <= valid_split.catalog["train_invoices"]).all()
    assert A.scarce_split(valid_split, 0.2, seed=0).train.equals(small.train)
    with pytest.raises(ValueError, match="share"):
        A.scarce_split(valid_split, customers=0)


def test_describe_counts_each_kind(valid_split):
    pool = pairs.training_examples(valid_split, seed=0, max_examples=300)
    ex = A.augment(pool, valid_split, "all", total=700, seed=1)
    table = A.describe(ex, valid_split)
    assert list(table.index) == ["original", *A.AUGMENTATIONS]
    assert table["examples"].sum() == 700 and table.loc["original", "examples"] == 350
    assert table.loc["synthetic", "mean targets"] == 1.0 and table.loc["synthetic", "rare targets"] == 1.0
    assert table.loc["word_dropout", "rewritten text"] == 1.0 and table.loc["crop", "rewritten text"] == 0.0
    assert (table["cold targets"] == 0).all()
    assert table.loc["crop", "mean context items"] < table.loc["original", "mean context items"]


def test_concat_and_empty_subsets():
    a = _ex([[1, 2]], [[3]])
    b = A.as_augmented(_ex([[4]], [[5]]), kind="crop")
    both = A.concat(a, b)
    assert len(both) == 2 and list(both.kind) == ["original", "crop"]
    assert len(both.subset([])) == 0 and len(a.subset([])) == 0
    assert len(A.concat()) == 0
    with pytest.raises(ValueError, match="one entry per example"):
        dataclasses.replace(both, texts=[None])


def test_text_neighbours_match_a_full_sort_ties_included():
    rng = np.random.default_rng(0)
    for _ in range(100):
        m, n = int(rng.integers(2, 30)), int(rng.integers(1, 40))
        sim = np.round(rng.random((m, m)), 1).astype(np.float32)   # many ties
        allowed = rng.random(m) < 0.7
        near, best = A.text_neighbours(None, n=n, candidates=allowed, similarity=sim)
        ref = sim.copy()
        ref[:, ~allowed] = -np.inf
        np.fill_diagonal(ref, -np.inf)
        order = np.argsort(-ref, axis=1, kind="stable")[:, :n]
        vals = np.take_along_axis(ref, order, axis=1)
        order = np.where(np.isfinite(vals), order, -1)
        assert np.array_equal(near[:, : order.shape[1]], order) and (near[:, order.shape[1]:] == -1).all()
        assert np.array_equal(best[:, : vals.shape[1]], vals)
