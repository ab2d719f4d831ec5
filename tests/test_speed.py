"""The speed benchmarks' arithmetic (the measurements themselves run with `make benchmark`)."""

import numpy as np
import pytest

from coldstart._internal.runinfo import cpu_model
from coldstart.tools import speed as benchmark
from coldstart.tools.latency import crossencoder_full_catalog


def test_training_flops_formula():
    # one token, no attention term: 3 x (2 N) -- forward 2N, backward 4N
    assert benchmark.training_flops_per_example(1000, 1, layers=0, hidden=8) == 6000
    # attention adds 4 x layers x length x hidden per token, forward; x3 for training
    assert benchmark.training_flops_per_example(0, 10, layers=2, hidden=4) == 3 * 10 * (4 * 2 * 10 * 4)
    # MiniLM-L6 at 25 tokens: about 1.6 GFLOP per training example
    assert benchmark.training_flops_per_example(10_600_000, 25, 6, 384) == pytest.approx(1.6e9, rel=0.05)
    # a pooler + head act once per sequence, not once per token
    assert benchmark.training_flops_per_example(1000, 10, 0, 8, head_params=50) == 3 * (10 * 2000 + 100)


def test_useful_param_counts_split_encoder_layers_from_pooler_and_head():
    from coldstart._internal.tf import import_tensorflow

    tf = import_tensorflow()
    from transformers import BertConfig, TFBertForSequenceClassification

    cfg = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                     max_position_embeddings=16, num_labels=1)
    clf = TFBertForSequenceClassification(cfg)
    clf(tf.constant([[1, 2, 3]]))
    # per layer: Q, K, V, O (8x8 + 8 each), FFN in (8x16 + 16) and out (16x8 + 8), two LayerNorms (2 x 8 each)
    per_layer = 4 * (64 + 8) + (128 + 16) + (128 + 8) + 2 * 16
    # per sequence: pooler (8x8 + 8) and the one-logit classifier (8 + 1); the embeddings count in neither
    assert benchmark.useful_param_counts(clf) == (2 * per_layer, 72 + 9)


def test_matmul_peak_is_a_positive_rate():
    peak = benchmark.matmul_peak(n=256, repeats=3)
    assert 0.1 < peak < 100_000


def test_merge_results_rewrites_only_its_own_key(tmp_path):
    import json

    out = tmp_path / "benchmarks.json"
    out.write_text(json.dumps({"training": {"speedup": 2.79}, "machine": {"cpu": "x86_64"}}))
    benchmark.merge_results(out, "serving", {"click_p95_ms": 1.9})
    benchmark.merge_results(out, "serving", {"click_p95_ms": 2.0})
    assert json.loads(out.read_text()) == {"training": {"speedup": 2.79}, "machine": {"cpu": "x86_64"},
                                           "serving": {"click_p95_ms": 2.0}}
    assert [p.name for p in tmp_path.iterdir()] == ["benchmarks.json"]


@pytest.mark.slow
def test_crossencoder_timing_scores_every_item_once():
    from conftest import models_folder

    model = models_folder() / "all-MiniLM-L6-v2"
    if not model.is_dir():
        pytest.skip("no local all-MiniLM-L6-v2")
    res = crossencoder_full_catalog(str(model), "red retrospot cake stand", ["a", "tea set", "zinc heart"] * 3,
                                              batch_size=4)
    assert res["crossencoder_items"] == 9 and res["crossencoder_full_catalog_ms"] > 0
    assert res["crossencoder_pairs_per_s"] == pytest.approx(9 / (res["crossencoder_full_catalog_ms"] / 1000), rel=0.01)


def test_interleaved_rounds_lead_each_round_with_a_peak_after_a_discarded_one():
    log = []
    peaks = iter([1.0, 10.0, 20.0, 30.0])

    def peak():
        log.append("peak")
        return next(peaks)

    got_peaks, seconds = benchmark.interleaved_rounds(
        peak, {"course": lambda: log.append("course"), "naive": lambda: log.append("naive")}, repeats=3)
    assert log == ["peak"] + ["peak", "course", "naive"] * 3
    assert got_peaks == [10.0, 20.0, 30.0]  # the first measurement is discarded
    assert set(seconds) == {"course", "naive"} and all(len(v) == 3 and min(v) >= 0 for v in seconds.values())


def test_interleaved_rounds_time_each_pass():
    import time

    _, seconds = benchmark.interleaved_rounds(lambda: 1.0, {"slow": lambda: time.sleep(0.05), "fast": lambda: None}, 2)
    assert min(seconds["slow"]) >= 0.05 > max(seconds["fast"])


def test_cpu_model_reads_name_and_widest_vector_extension(tmp_path):
    info = tmp_path / "cpuinfo"
    cpu = "processor\t: {i}\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 avx avx2 fma {extra}\n\n"
    info.write_text(cpu.format(i=0, extra="avx512f avx512bw") + cpu.format(i=1, extra="avx512f avx512bw"))
    assert cpu_model(str(info)) == {"cpu_model": "Intel(R) Xeon(R) Processor", "simd": "AVX-512"}
    info.write_text(cpu.format(i=0, extra="").replace("Intel(R) Xeon(R) Processor", "AMD EPYC 7B13"))
    assert cpu_model(str(info)) == {"cpu_model": "AMD EPYC 7B13", "simd": "AVX2"}
    assert cpu_model(str(tmp_path / "missing")) == {}


def test_step_breakdown_times_every_part_against_the_peak(tmp_path):
    from coldstart._internal.tf import import_tensorflow

    tf = import_tensorflow()
    from transformers import BertConfig, TFBertForSequenceClassification

    cfg = BertConfig(vocab_size=1200, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                     max_position_embeddings=16, num_labels=1)
    clf = TFBertForSequenceClassification(cfg)
    clf(tf.constant([[1, 2, 3]]))
    clf.save_pretrained(str(tmp_path / "tiny"))
    peaks = iter([0.005, 0.01])   # a discarded peak, then one per round; tiny, like the model, so fractions are ~1
    out = benchmark.benchmark_step_breakdown(str(tmp_path / "tiny"), batch_size=4, length=6, repeats=1, steps=2,
                                             peak=lambda: next(peaks))
    parts = ["forward", "forward_backward", "step_keras_adam", "step_fused_adam"]
    assert all(out[f"{p}_ms"] > 0 for p in parts) and out["matmul_peak_gflop_per_s"] == 0.01
    per_token, per_seq = benchmark.useful_param_counts(clf)
    assert out["useful_gflop_per_step"] == pytest.approx(
        4 * benchmark.training_flops_per_example(per_token, 6, 1, 8, per_seq) / 1e9, rel=1e-3)
    # each fraction is that part's useful FLOP/s over the peak; a forward pass does a third of a step's work
    for p in parts:
        flops = out["useful_gflop_per_step"] / (3 if p == "forward" else 1)
        assert out[f"{p}_fraction_of_matmul_peak"] == pytest.approx(flops / (out[f"{p}_ms"] / 1000) / 0.01, rel=0.05)
        assert out[f"{p}_fraction_of_matmul_peak"] > 0.01
    # the step's products alone: 24 tokens x 8 by 8 x 8 and by 8 x 16; 4 pairs x 2 heads of 6 x 4 by 4 x 6
    for p, flops in [("matmul_projection", 2 * 24 * 8 * 8), ("matmul_feed_forward", 2 * 24 * 8 * 16),
                     ("matmul_attention", 2 * 8 * 6 * 6 * 4)]:
        assert out[f"{p}_ms"] > 0
        assert out[f"{p}_fraction_of_matmul_peak"] == pytest.approx(flops / 1e9 / (out[f"{p}_ms"] / 1000) / 0.01,
                                                                    rel=0.05)


@pytest.mark.slow
def test_training_benchmark_counts_batches_and_real_tokens(monkeypatch):
    from conftest import models_folder

    model = models_folder() / "all-MiniLM-L6-v2"
    if not model.is_dir():
        pytest.skip("no local all-MiniLM-L6-v2")
    # 16 short pairs and 16 long ones: two length buckets, each of one length, so no padding at all
    short = ("cake stand", "tea set")
    long = ("red retrospot cake stand ; zinc heart lantern ; paper garland", "tea set")
    pairs = [short] * 16 + [long] * 16
    monkeypatch.setattr(benchmark, "_pairs", lambda n, seed=0: ([c for c, _ in pairs], [i for _, i in pairs],
                                                             (np.arange(len(pairs)) % 2).astype(np.float32)))
    out = benchmark.benchmark_training(str(model), n_pairs=32, batch_size=8, repeats=1, peak=lambda: 100.0)
    assert out["pairs"] == 32 and out["course_batches_per_pass"] == 4 and out["course_real_token_share"] == 1.0
    assert out["course_examples_per_s"] > 0 and out["naive_examples_per_s"] > 0
    assert out["speedup"] == pytest.approx(out["course_examples_per_s"] / out["naive_examples_per_s"], rel=0.01)
    assert out["fraction_of_matmul_peak"] == pytest.approx(out["course_gflop_per_s"] / 100.0, rel=0.01)
    # 3 more short pairs: a partial fifth batch
    pairs += [short] * 3
    out = benchmark.benchmark_training(str(model), n_pairs=35, batch_size=8, repeats=1, naive=False, peak=lambda: 100.0)
    assert out["course_batches_per_pass"] == 5


@pytest.mark.slow
def test_batching_benchmark_compares_buckets_with_length_grouped_batches(monkeypatch):
    from conftest import models_folder

    model = models_folder() / "all-MiniLM-L6-v2"
    if not model.is_dir():
        pytest.skip("no local all-MiniLM-L6-v2")
    # pairs of 3 lengths, 6 of each: the bucket of up to 8 tokens holds both short lengths (5 and 6)
    texts = [("cake", "tea"), ("cake stand", "tea"),
             ("red retrospot cake stand ; zinc heart lantern ; paper garland", "tea set")]
    pairs = [texts[i % 3] for i in range(18)]
    monkeypatch.setattr(benchmark, "_pairs", lambda n, seed=0: ([c for c, _ in pairs], [i for _, i in pairs],
                                                             (np.arange(len(pairs)) % 2).astype(np.float32)))
    peaks = iter([50.0, 100.0])    # the discarded peak, then one round's
    variants = (("buckets-4", 4, None, 1), ("grouped-6-spe3", 6, 50, 3))
    out = benchmark.benchmark_batching(str(model), n_pairs=18, repeats=1, variants=variants, peak=lambda: next(peaks))
    buckets, grouped = out["variants"]["buckets-4"], out["variants"]["grouped-6-spe3"]
    # sorted by length, 18 pairs in batches of 6 are exactly the 3 lengths: no padding, no partial batch
    assert grouped["batches_per_pass"] == 3 and grouped["real_token_share"] == 1.0
    assert grouped["steps_per_execution"] == 3
    # buckets of 4: a partial batch per bucket, and padding where the two short lengths share a bucket
    assert buckets["batches_per_pass"] > 4 and buckets["real_token_share"] < 1.0
    assert out["matmul_peak_runs_gflop_per_s"] == [100.0]
    for v in (buckets, grouped):
        assert v["examples_per_s"] > 0
        assert v["fraction_of_matmul_peak"] == pytest.approx(
            v["examples_per_s"] * out["useful_gflop_per_example"] / 100.0, rel=0.01)
