"""The serving recommender of notebook 07: values, fallbacks, bad input, persistence, sessions.

Most tests use the tiny hand-made split (conftest) and a tiny randomly initialised BERT with the real
MiniLM tokenizer (loads in well under a second), so they check the arithmetic, not the model. Tests
marked slow load all-MiniLM-L6-v2 and the real catalog.
"""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import models_folder

import coldstart
from coldstart import serving
from coldstart.data import Cases
from coldstart.models.baselines import CountryPopularity, ItemRegression, basket_matrix
from coldstart.models.retrieval import Recipe
from coldstart.tools.latency import measure_latency

tf = coldstart.import_tensorflow()
MINILM = models_folder() / "all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def tokenizer():
    if not (MINILM / "tokenizer_config.json").is_file():
        pytest.skip(f"no local all-MiniLM-L6-v2 at {MINILM} (set COLDSTART_MODELS_DIR)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(MINILM))


@pytest.fixture(scope="module")
def tiny_bert(tokenizer):
    from transformers import BertConfig, TFBertModel

    tf.keras.utils.set_random_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=128)
    model = TFBertModel(cfg)
    model(input_ids=tf.constant([[101, 102]]))
    return model


@pytest.fixture
def rec(tiny_split, tokenizer, tiny_bert):
    return serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, Recipe(w_text=0.5, beta=0.01, lam=1.0),
                                          progress=False)


def _cos_scores(rec, clicks, query_vec=None):
    vecs = [rec.index[rec.position(c)] for c in clicks] + ([query_vec] if query_vec is not None else [])
    u = np.mean(vecs, axis=0)
    return rec.index @ (u / np.linalg.norm(u))


# -- values ------------------------------------------------------------------------------------------
def test_click_scores_are_the_recipe_computed_by_hand(rec, tiny_split):
    clicks = ["10001", "10003"]
    out = rec.recommend(clicks, k=10)
    B = ItemRegression(basket_matrix(tiny_split), lam=1.0).B
    pos = [rec.position(c) for c in clicks]
    expected = 0.5 * _cos_scores(rec, clicks) + B[pos].sum(axis=0) + 0.01 * rec.is_new   # x B: the sum of rows
    expected[pos] = -np.inf
    order = np.argsort(-expected, kind="stable")[:8]   # 10 items, 2 clicked
    assert list(out.columns) == ["item_id", "text", "score", "reason"]
    assert list(out.index) == list(range(1, 9))
    assert out["item_id"].tolist() == [rec.item_ids[i] for i in order]
    assert np.allclose(out["score"], expected[order], atol=1e-5)
    assert out.attrs == {"notes": [], "unknown_items": [], "fallback": None}


def test_a_soft_maximum_recipe_scores_clicks_as_text_similarity_does(tiny_split, tokenizer, tiny_bert):
    recipe = Recipe(w_text=0.5, beta=0.01, lam=1.0, softness=0.1)
    rec = serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, recipe, progress=False)
    clicks = ["10001", "10003"]
    pos = [rec.position(c) for c in clicks]
    sims = rec.index[pos] @ rec.index.T / 0.1
    soft = 0.1 * np.log(np.exp(sims).mean(axis=0))                     # t log mean exp(cos / t)
    B = ItemRegression(basket_matrix(tiny_split), lam=1.0).B
    expected = 0.5 * soft + B[pos].sum(axis=0) + 0.01 * rec.is_new
    expected[pos] = -np.inf
    order = np.argsort(-expected, kind="stable")[:5]
    out = rec.recommend(clicks, k=5)
    assert out["item_id"].tolist() == [rec.item_ids[i] for i in order]
    assert np.allclose(out["score"], expected[order], atol=1e-5)
    assert not np.allclose(soft, _cos_scores(rec, clicks), atol=1e-3)   # not the average's scores
    cases = Cases(context=[np.array(pos)], country=np.array(["France"]),
                  date=np.array(["2011-03-01"], "datetime64[ns]"))
    assert np.allclose(rec.score(cases)[0, order], expected[order], atol=1e-5)   # the evaluation path agrees


def test_clicked_and_excluded_items_are_never_recommended_and_k_is_capped(rec):
    out = rec.recommend(["10001", "10001", "10002"], exclude=["10005"], k=50)
    assert len(out) == 10 - 3
    assert not {"10001", "10002", "10005"} & set(out["item_id"])
    assert out["score"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rec.recommend(["10001"], k=0)


def test_unknown_item_ids_are_ignored_and_listed(rec):
    plain = rec.recommend(["10001"], k=5)
    out = rec.recommend(["nope", "10001", 12345], k=5)
    assert out["item_id"].tolist() == plain["item_id"].tolist()
    assert np.allclose(out["score"], plain["score"])
    assert out.attrs["unknown_items"] == ["nope", "12345"]
    assert "ignored 2 unknown item id(s)" in out.attrs["notes"][0]


def test_empty_context_falls_back_to_country_then_global_popularity(rec, tiny_split):
    cp = CountryPopularity(tiny_split)
    france = rec.recommend(country="France", k=10)
    expected = cp.share[cp.countries["France"]] + 0.1 * cp.glob
    order = np.argsort(-expected, kind="stable")
    assert france["item_id"].tolist() == [tiny_split.item_ids[i] for i in order]
    assert np.allclose(france["score"], expected[order])
    assert set(france["reason"]) == {"popular in France"} and france.attrs["fallback"] == "country"
    # Germany has no training customers: global popularity, and a note says why
    germany = rec.recommend(country="Germany", k=3)
    assert germany.attrs["fallback"] == "global" and set(germany["reason"]) == {"popular overall"}
    assert "no training customers from 'Germany'" in germany.attrs["notes"][0]
    assert germany["item_id"].tolist() == [tiny_split.item_ids[i] for i in np.argsort(-cp.glob, kind="stable")[:3]]
    # only unknown clicks is an empty context too
    assert rec.recommend(["nope"], k=3).attrs["fallback"] == "global"


def test_empty_and_blank_queries_are_ignored(rec):
    plain = rec.recommend(["10004"], k=5)
    for blank in ["", "   \n"]:
        out = rec.recommend(["10004"], query_text=blank, k=5)
        assert out["item_id"].tolist() == plain["item_id"].tolist()
        assert out.attrs["notes"] == ["the query is empty: ignored"]
    with pytest.raises(ValueError, match="empty"):
        rec.encode_query(" ")


def test_query_vector_is_the_mean_pooled_encoding_and_words_share_it_exactly(rec, tokenizer, tiny_bert):
    from coldstart.models.encoders import encode

    q = rec.encode_query("Red retrospot cake")
    assert np.allclose(q.vector, encode(["Red retrospot cake"], tokenizer, tiny_bert, max_len=64)[0], atol=1e-5)
    assert q.words == ["Red", "retrospot", "cake"]   # a word split into word pieces is one word
    ids = tokenizer("Red retrospot cake")["input_ids"]
    hidden = tiny_bert(input_ids=tf.constant([ids])).last_hidden_state.numpy()[0]
    special = (hidden[0] + hidden[-1]) / (len(ids) * np.linalg.norm(hidden.mean(0)))  # [CLS] and [SEP]
    assert np.allclose(q.word_parts.sum(axis=0) + special, q.vector, atol=1e-5)


def test_query_and_clicks_are_averaged_and_the_reason_names_the_top_contributor(rec):
    q = rec.encode_query("zinc heart")
    out = rec.recommend(["10001"], query_text=q, k=8)
    expected = 0.5 * _cos_scores(rec, ["10001"], q.vector) + 0.01 * rec.is_new
    expected += rec.id_matrix[rec.position("10001")]
    assert np.allclose(out["score"], [expected[rec.position(i)] for i in out["item_id"]], atol=1e-5)
    allowed = {'searched "zinc"', 'searched "heart"', 'similar to "red retrospot cake stand"',
               'bought with "red retrospot cake stand"'}
    assert {r.replace(" · new product", "") for r in out["reason"]} <= allowed
    # the reason is the largest contribution: check one item by hand
    top = rec.position(out["item_id"].iloc[0])
    v = rec.index[top]
    u_raw = (rec.index[rec.position("10001")] + q.vector) / 2
    denom = 2 * np.linalg.norm(u_raw)
    click = 0.5 * rec.index[rec.position("10001")] @ v / denom + rec.id_matrix[rec.position("10001"), top]
    words = 0.5 * q.word_parts @ v / denom
    if click >= words.max():
        assert out["reason"].iloc[0].split(" · ")[0].endswith('"red retrospot cake stand"')
    else:
        assert out["reason"].iloc[0].startswith(f'searched "{q.words[int(words.argmax())]}"')


def test_reason_says_bought_with_when_the_id_part_dominates(tiny_split, tokenizer, tiny_bert):
    rec = serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, Recipe(w_text=1e-6, lam=1.0), progress=False)
    out = rec.recommend(["10001"], k=3)
    assert out["reason"].iloc[0] == 'bought with "red retrospot cake stand"'
    assert "new product" not in " ".join(out["reason"])   # beta = 0: no bias, no label


def test_very_long_query_is_truncated_and_says_so(rec, tokenizer):
    long = "zinc heart decoration " * 200
    q = rec.encode_query(long)
    assert q.truncated and q.n_tokens == rec.query_max_len
    cut = tokenizer.decode(tokenizer(long, max_length=64, truncation=True)["input_ids"][1:-1])
    assert np.allclose(q.vector, rec.encode_query(cut).vector, atol=1e-5)
    out = rec.recommend(query_text=long, k=3)
    assert out.attrs["notes"] == ["the query is longer than 64 tokens: truncated"] and len(out) == 3


def test_non_ascii_text_is_encoded_like_its_ascii_form(rec):
    accented = rec.encode_query("Décoration de Noël ❄ 圣诞")
    assert np.isfinite(accented.vector).all() and abs(np.linalg.norm(accented.vector) - 1) < 1e-5
    assert np.allclose(rec.encode_query("Décoration Noël").vector, rec.encode_query("decoration noel").vector,
                       atol=1e-6)
    out = rec.recommend(query_text="Décoration de Noël ❄ 圣诞", k=4)
    assert len(out) == 4 and np.isfinite(out["score"]).all()
    ids = rec.add_items(["Boîte à thé «Noël»"], ["ÉTÉ-1"])
    assert rec.recommend(["ÉTÉ-1"], k=2).attrs["unknown_items"] == [] and ids == ["ÉTÉ-1"]


# -- new products ------------------------------------------------------------------------------------
def test_added_items_enter_the_index_and_are_recommended(rec, tokenizer, tiny_bert):
    from coldstart.models.encoders import encode

    n = rec.n_items
    ids = rec.add_items(["glass star christmas bauble", "wooden advent calendar"])
    assert ids == ["new-1", "new-2"] and rec.n_items == n + 2
    assert np.allclose(rec.index[n:], encode(["glass star christmas bauble", "wooden advent calendar"], tokenizer,
                                             tiny_bert, max_len=rec.max_len), atol=1e-6)
    assert rec.is_new[-2:].tolist() == [1, 1] and rec.popularity[-2:].tolist() == [0, 0]
    out = rec.recommend(query_text="glass star christmas bauble", k=rec.n_items)
    row = out.set_index("item_id").loc["new-1"]
    assert row["score"] == pytest.approx(0.5 * 1.0 + 0.01, abs=1e-4)   # cosine with itself is 1, plus beta
    # clicking a new item works (it has no ID row: only text and beta count)
    clicked = rec.recommend(["new-2"], k=rec.n_items)
    assert "new-2" not in set(clicked["item_id"]) and clicked.attrs["unknown_items"] == []
    expected = 0.5 * _cos_scores(rec, ["new-2"]) + 0.01 * rec.is_new
    assert np.allclose(clicked["score"], [expected[rec.position(i)] for i in clicked["item_id"]], atol=1e-5)
    assert rec.add_items(["sequin bag"]) == ["new-3"]


@pytest.mark.parametrize("texts, ids, match", [
    (["a product"], ["10001"], "already in the catalog"),
    (["one", "two"], ["x", "x"], "repeated"),
    (["   "], ["x"], "empty text"),
    (["one", "two"], ["x"], "2 texts but 1 ids"),
])
def test_add_items_rejects_bad_input_and_changes_nothing(rec, texts, ids, match):
    before = (rec.n_items, rec.index.copy())
    with pytest.raises(ValueError, match=match):
        rec.add_items(texts, ids)
    assert rec.n_items == before[0] and np.array_equal(rec.index, before[1])


# -- batch scoring -----------------------------------------------------------------------------------
def test_batch_scores_equal_single_recommendations(rec, tiny_split):
    from coldstart import evaluation as E

    ctx = [np.array([0, 2]), np.array([4]), np.array([], dtype=np.int64)]
    batch = Cases(context=ctx, country=np.array(["France", "United Kingdom", "France"]),
                  date=np.array(["2011-03-01"] * 3, dtype="datetime64[ns]"))
    scores = rec.score(batch)
    assert scores.shape == (3, rec.n_items)
    for row, c in enumerate(ctx):
        out = rec.recommend([rec.item_ids[i] for i in c], country=batch.country[row], k=5)
        assert np.allclose(scores[row, [rec.position(i) for i in out["item_id"]]], out["score"], atol=1e-5)
    result = E.evaluate(rec, tiny_split, n_boot=0)
    ndcg = result.pivot("ndcg@10")
    assert set(ndcg.index) == {"k=1", "k=3", "k=5", "cold-items", "warm"} and ((ndcg >= 0) & (ndcg <= 1)).all()


# -- persistence -------------------------------------------------------------------------------------
def test_save_and_load_give_identical_recommendations(rec, tmp_path):
    rec.add_items(["glass star christmas bauble"], ["NEW-1"])
    folder = rec.save(tmp_path / "recommender")
    assert {p.name for p in folder.iterdir()} == {"encoder", "index.npy", "id_matrix.npy", "catalog.parquet",
                                                 "popularity.npz", "serving.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["recommender"]   # no temporary folder left
    meta = json.loads((folder / "serving.json").read_text())
    assert meta["versions"]["tensorflow"] == tf.__version__ and meta["recipe"] == {
        "w_text": 0.5, "beta": 0.01, "lam": 1.0, "dropout": 0.0, "customers": False, "softness": None,
        "price_band": False}
    back = serving.Recommender.load(folder)
    assert back.item_ids == rec.item_ids and np.array_equal(back.index, rec.index)
    for kwargs in [dict(clicked_items=["10001", "NEW-1"]), dict(query_text="zinc heart", clicked_items=["10003"]),
                   dict(country="France"), dict(country="Narnia")]:
        a, b = rec.recommend(k=6, **kwargs), back.recommend(k=6, **kwargs)
        pd.testing.assert_frame_equal(a, b, atol=1e-6)
        assert a.attrs == b.attrs


def test_a_price_band_recipe_indexes_each_text_with_its_band_and_needs_prices_for_new_products(
        tiny_split, tokenizer, tiny_bert, tmp_path):
    from coldstart.models.encoders import encode

    rec = serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, Recipe(w_text=0.5, lam=1.0, price_band=True),
                                         progress=False)
    banded = tiny_split.texts(price_band=True)
    assert rec.texts == tiny_split.texts() and rec.index_texts() == banded   # lists show the text alone
    assert np.allclose(rec.index, encode(banded, tokenizer, tiny_bert, max_len=rec.max_len), atol=1e-6)
    before = (rec.index.copy(), list(rec.item_ids), rec.prices.copy(), rec.n_items)
    for prices, match in [(None, "give prices"), ([-1.0], "not negative"), ([np.inf], "finite"),
                          (["cheap"], "numbers in pounds"), ([1.0, 2.0], "1 texts but 2 prices")]:
        with pytest.raises(ValueError, match=match):
            rec.add_items(["glass star christmas bauble"], ["NEW-1"], prices=prices)
        assert np.array_equal(rec.index, before[0]) and rec.item_ids == before[1]
        assert np.array_equal(rec.prices, before[2], equal_nan=True) and rec.n_items == before[3]
    rec.add_items(["glass star christmas bauble", "paper chain kit"], ["NEW-1", "NEW-2"], prices=[12.5, None])
    assert rec.index_texts()[-2:] == ["glass star christmas bauble , over ten pounds", "paper chain kit"]
    assert np.allclose(rec.index[-2:], encode(rec.index_texts()[-2:], tokenizer, tiny_bert, max_len=rec.max_len),
                       atol=1e-6)
    back = serving.Recommender.load(rec.save(tmp_path / "priced"))
    assert back.recipe.price_band and back.index_texts() == rec.index_texts()
    pd.testing.assert_frame_equal(back.recommend(["NEW-1"], k=5), rec.recommend(["NEW-1"], k=5), atol=1e-6)
    # notebook 03's way to encode a context joins the texts the index was built from
    assert list(serving.encoded_context_recommender(rec).text.texts) == rec.index_texts()
    # the constructor checks prices as add_items does
    args = (rec.tokenizer, rec.encoder, rec.item_ids[:2], rec.texts[:2], rec.index[:2])
    with pytest.raises(ValueError, match="give prices"):
        serving.Recommender(*args, recipe=Recipe(price_band=True))
    with pytest.raises(ValueError, match="not negative"):
        serving.Recommender(*args, prices=[1.0, -3.0])
    # a recipe without price bands indexes the texts alone, and a price is optional there
    plain = serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, Recipe(w_text=0.5, lam=1.0),
                                           progress=False)
    assert plain.index_texts() == tiny_split.texts()
    plain.add_items(["paper chain kit"], ["NEW-2"])
    assert np.isnan(plain.prices[-1])


def test_a_folder_saved_before_prices_existed_still_loads(rec, tmp_path):
    folder = rec.save(tmp_path / "old")
    meta = json.loads((folder / "serving.json").read_text())
    assert meta["format"] == 2
    meta["format"] = 1
    del meta["recipe"]["price_band"]
    (folder / "serving.json").write_text(json.dumps(meta))
    pd.read_parquet(folder / "catalog.parquet").drop(columns="price").to_parquet(folder / "catalog.parquet")
    back = serving.Recommender.load(folder)
    assert not back.recipe.price_band and np.isnan(back.prices).all() and back.index_texts() == rec.texts
    pd.testing.assert_frame_equal(back.recommend(["10001"], k=5), rec.recommend(["10001"], k=5), atol=1e-6)


def test_save_replaces_atomically_and_keeps_the_old_folder_on_failure(rec, tmp_path, monkeypatch):
    folder = rec.save(tmp_path / "rec")
    before = (folder / "index.npy").read_bytes()
    rec.add_items(["sequin bag"], ["NEW-9"])

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        rec.save(folder)
    assert (folder / "index.npy").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]
    assert "NEW-9" not in serving.Recommender.load(folder).item_ids


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved recommender"):
        serving.Recommender.load(tmp_path)


def test_recipe_is_read_from_retriever_json(tmp_path):
    assert Recipe.read(tmp_path / "missing.json") is None
    (tmp_path / "r.json").write_text(json.dumps({"w": 0.1, "beta": 0.005, "lam": 1000, "val_ndcg": 0.2}))
    assert Recipe.read(tmp_path / "r.json") == Recipe(w_text=0.1, beta=0.005, lam=1000.0)
    (tmp_path / "r.json").write_text(json.dumps({"recipe": {"w_text": 0.2, "beta": 0.0}}))
    assert Recipe.read(tmp_path / "r.json") == Recipe(w_text=0.2, beta=0.0, lam=None)
    (tmp_path / "r.json").write_text(json.dumps({"w_text": 0.2, "softness": 0.05}))
    assert Recipe.read(tmp_path / "r.json").softness == 0.05 and not Recipe.read(tmp_path / "r.json").price_band
    Recipe(w_text=0.2, price_band=True).save(tmp_path / "r.json", encoder="checkpoints/two-tower")
    assert Recipe.read(tmp_path / "r.json") == Recipe(w_text=0.2, price_band=True)
    (tmp_path / "r.json").write_text(json.dumps({"w_text": 0.2, "price_band": "false"}))
    with pytest.raises(ValueError, match="'price_band' must be true or false"):
        Recipe.read(tmp_path / "r.json")
    with pytest.raises(ValueError, match="unknown recipe keys"):
        Recipe.from_dict({"w_txt": 1})


def test_for_profile_uses_the_checkpoint_and_its_recipe(tiny_split, tokenizer, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("COLDSTART_RUNS", str(tmp_path))
    monkeypatch.setenv("COLDSTART_HOME", str(tmp_path))   # paths are printed relative to the project
    ckpt = serving.checkpoint_folder("smoke")
    tiny_bert.save_pretrained(str(ckpt))
    tokenizer.save_pretrained(str(ckpt))
    (tmp_path / "retriever.json").write_text(json.dumps({"w_text": 0.3, "beta": 0.02, "lam": 2.0, "dropout": 0.5,
                                                         "customers": True}))
    rec, message = serving.for_profile(tiny_split, "smoke", progress=False)
    assert rec.recipe == Recipe(w_text=0.3, beta=0.02, lam=2.0, dropout=0.5, customers=True)
    # the ID part as notebook 03 fits it
    expected = ItemRegression(basket_matrix(tiny_split, customers=True), lam=2.0, dropout=0.5).B
    assert rec.id_matrix.shape == (10, 10) and np.allclose(rec.id_matrix, expected, atol=1e-6)
    assert not np.allclose(expected, ItemRegression(basket_matrix(tiny_split), lam=2.0).B, atol=1e-4)
    assert message.startswith("fine-tuned two-tower from") and "recipe from" in message
    assert str(tmp_path) not in message + repr(rec) and "from checkpoints/two-tower" in message   # no machine paths
    assert np.allclose(rec.encode_query("zinc heart").vector,
                       serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, progress=False)
                       .encode_query("zinc heart").vector, atol=1e-6)


# -- sessions and the widget -------------------------------------------------------------------------
def test_a_session_encodes_the_query_once_and_clicks_without_the_encoder(rec, monkeypatch):
    session = serving.Session(rec, country="France", k=4)
    assert session.current.attrs["fallback"] == "country"
    first = session.search("zinc heart")
    assert first.attrs["fallback"] is None

    def no_encoder(*args, **kwargs):
        raise AssertionError("a click must not call the encoder")

    monkeypatch.setattr(rec, "encode_query", no_encoder)
    monkeypatch.setattr(rec, "encoder", None)
    item = first["item_id"].iloc[0]
    after = session.click(item)
    assert session.clicks == [item] and item not in set(after["item_id"])
    expected = rec.recommend([item], query_text=session.query, k=4)
    pd.testing.assert_frame_equal(after, expected)
    assert [a for a, _ in session.timings] == ["start", "search", "click"] and all(ms >= 0 for _, ms in session.timings)


def test_demo_widget_updates_on_search_and_on_every_click(rec):
    pytest.importorskip("ipywidgets")
    demo = serving.demo_widget(rec, country="United Kingdom", k=5)
    assert len(demo.items.children) == 5
    demo.type_query("zinc heart")
    assert demo.search_box.value == "zinc heart" and "search" in demo.status.value
    button = demo.items.children[0].children[0]
    chosen = demo.session.current["item_id"].iloc[0]
    button.click()   # what a person's click does
    assert demo.session.clicks == [chosen] and "click" in demo.status.value
    assert chosen not in set(demo.session.current["item_id"])
    demo.search_box.value = "red cake"   # a person typing and pressing Enter
    assert demo.session.query.text == "red cake" and len(demo.session.timings) == 4


# -- the real model (slow) ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_rec(split):
    return serving.Recommender.from_split(split, str(MINILM), progress=False)


@pytest.mark.slow
def test_real_model_ranks_an_added_product_first_for_its_own_text(real_rec):
    real_rec.add_items(["hand painted glass christmas bauble with glitter"], ["NEW-BAUBLE"])
    out = real_rec.recommend(query_text="hand painted glass christmas bauble with glitter", k=5)
    assert out["item_id"].iloc[0] == "NEW-BAUBLE" and out["score"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    xmas = real_rec.recommend(query_text="vintage christmas decorations", k=10)
    assert sum("christmas" in t for t in xmas["text"]) >= 5
    assert ({r.split(" · ")[0] for r in xmas["reason"]}
            <= {'searched "vintage"', 'searched "christmas"', 'searched "decorations"'})


@pytest.mark.slow
def test_measure_latency_reports_percentiles_of_real_sessions(real_rec, split):
    lat = measure_latency(real_rec, split, n_users=5, n_queries=5, warmup=2, batch_users=50, batch_size=25)
    assert lat["n_clicks"] == 25 and lat["n_queries"] == 5 and lat["batch_users"] == 50
    assert 0 < lat["click_p50_ms"] <= lat["click_p95_ms"] and 0 < lat["query_p50_ms"] <= lat["query_p95_ms"]
    assert lat["click_p95_ms"] == pytest.approx(np.percentile(lat["click_ms"], 95)) and lat["batch_users_per_s"] > 0


def test_encoded_context_variant_agrees_on_one_click_and_differs_on_several(rec):
    variant = serving.encoded_context_recommender(rec)
    one = Cases(context=[np.array([3]), np.array([0, 2, 4])], country=np.array(["France"] * 2),
                date=np.array(["2011-03-01"] * 2, dtype="datetime64[ns]"))
    a, b = rec.score(one), variant.score(one)
    assert np.allclose(a[0], b[0], atol=1e-5)       # one short item text: the same vector either way
    assert not np.allclose(a[1], b[1], atol=1e-3)   # three items: mean of vectors != vector of the joined text


def test_latency_figure_marks_each_path():
    import matplotlib

    matplotlib.use("Agg")
    from coldstart import plots

    ax = plots.latency_distribution({"click": [1.0, 1.2, 1.4, 5.0], "query": [20.0, 22.0, 30.0]},
                                    targets={"click": 10, "query": 50})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("click: p50 1.3 ms") and labels[1].startswith("query: p50 22.0 ms")
    assert sorted(round(line.get_xdata()[0], 2) for line in ax.lines) == sorted(
        [round(float(np.percentile([1.0, 1.2, 1.4, 5.0], 95)), 2), 10,
         round(float(np.percentile([20.0, 22.0, 30.0], 95)), 2), 50])


def test_a_request_runs_on_one_blas_thread_and_restores_the_setting(rec, monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    seen = []
    real = rec._recommend
    monkeypatch.setattr(rec, "_recommend", lambda *a: (seen.append(blas_threads()), real(*a))[1])
    rec.recommend(["10001"], k=3)
    assert seen and all(n == 1 for n in seen[0]) and blas_threads() == before
    rec.blas_threads = None
    rec.recommend(["10001"], k=3)
    assert seen[1] == before


def test_the_served_id_part_is_item_regression_score(tiny_split, tokenizer, tiny_bert):
    # a guard: if ItemRegression changes how it scores a context, serving must follow
    rec = serving.Recommender.from_split(tiny_split, tiny_bert, tokenizer, Recipe(w_text=0.0, lam=1.0), progress=False)
    batch = Cases(context=[np.array([0, 2, 4]), np.array([1])], country=np.array(["France", "France"]),
                  date=np.array(["2011-03-01"] * 2, dtype="datetime64[ns]"))
    expected = ItemRegression(basket_matrix(tiny_split), lam=1.0).score(batch)
    assert np.allclose(rec.score(batch), expected, atol=1e-6)
    out = rec.recommend([rec.item_ids[i] for i in batch.context[0]], k=3)
    assert np.allclose(out["score"], np.sort(np.delete(expected[0], [0, 2, 4]))[::-1][:3], atol=1e-6)
