"""The benchmark's arithmetic (the measurements themselves run with `make benchmark`)."""

import pytest

from coldstart import benchmark


def test_training_flops_formula():
    # one token, no attention term: 3 x (2 N) -- forward 2N, backward 4N
    assert benchmark.training_flops_per_example(1000, 1, layers=0, hidden=8) == 6000
    # attention adds 4 x layers x length x hidden per token, forward; x3 for training
    assert benchmark.training_flops_per_example(0, 10, layers=2, hidden=4) == 3 * 10 * (4 * 2 * 10 * 4)
    # MiniLM-L6 at 25 tokens: about 1.6 GFLOP per training example
    assert benchmark.training_flops_per_example(10_600_000, 25, 6, 384) == pytest.approx(1.6e9, rel=0.05)


def test_matmul_peak_is_a_positive_rate():
    peak = benchmark.matmul_peak(n=256, repeats=3)
    assert 0.1 < peak < 100_000
