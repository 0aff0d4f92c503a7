"""The analytics bench's arithmetic: a click's lag runs to the first sample whose total of its link includes it."""
from __future__ import annotations

from bench.analytics import AnalyticsRun, lags
from services.shortener.load import LoadResult, weights


def test_the_k_th_click_of_a_link_is_seen_at_the_first_sample_whose_total_reaches_k():
    clicked = {1: [10.0, 10.5], 2: [10.2]}
    samples = [(10.1, {}), (10.3, {1: 1}), (10.6, {1: 1, 2: 1}), (10.9, {1: 2, 2: 1})]
    assert sorted(round(x) for x in lags(clicked, samples)) == [300, 400, 400]


def test_a_click_never_seen_has_no_lag_rather_than_a_made_up_one():
    assert lags({1: [10.0, 11.0]}, [(10.5, {1: 1})]) == [500.0]


def test_percentiles_and_served_rate():
    run = AnalyticsRun(200, 60, 20, LoadResult(offered=100, redirected=90, seconds=2.0,
                                               latencies_ms=[float(x) for x in range(1, 91)]),
                       tuple(float(x) for x in range(1, 101)), True)
    assert (run.lag(0.5), run.lag(0.99), run.load.served_per_s, run.redirect_ms(0.5)) == (51.0, 100.0, 45.0, 46.0)


def test_popularity_is_skewed_towards_the_first_links():
    w = weights(4)
    assert w == sorted(w, reverse=True) and w[0] / w[3] > 4
