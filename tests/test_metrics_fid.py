import warnings

import numpy as np
import pytest
import scipy.linalg

from tfx_gan.metrics.fid import (
    FeatureStats,
    frechet_distance,
    frechet_distance_from_features,
    frechet_distance_from_stats,
)

# current_line: also run on the TFX 1.21 line, in the Debian 13 root (./gan test).
pytestmark = pytest.mark.current_line


def textbook_fid(mu1, sigma1, mu2, sigma2):
    """The scipy.linalg.sqrtm formulation (pytorch-fid), valid for well-conditioned inputs."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real))


def correlated_features(rng, n, d, shift=0.0, mix=None):
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d) if mix is None else mix
    return rng.normal(size=(n, d)) @ mix + shift


def stats_of(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


def test_diagonal_covariances_match_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_rotated_commuting_covariances_match_closed_form():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute: the trace term is sum (sqrt(a) - sqrt(b))^2.
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    a, b = rng.uniform(0.0, 2.0, 12), rng.uniform(0.0, 2.0, 12)
    a[:3] = 0.0  # singular S1: still exact and real
    mu = np.zeros(12)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    value = frechet_distance(mu, q @ np.diag(a) @ q.T, mu, q @ np.diag(b) @ q.T)
    assert value == pytest.approx(expected, rel=1e-10)


def test_matches_scipy_sqrtm_on_well_conditioned_inputs():
    rng = np.random.default_rng(2)
    x = correlated_features(rng, 3000, 32)
    y = correlated_features(rng, 2500, 32, shift=0.3)
    expected = textbook_fid(*stats_of(x), *stats_of(y))
    assert frechet_distance(*stats_of(x), *stats_of(y)) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance_from_features(x, y) == pytest.approx(expected, rel=1e-6)


def test_symmetric_in_its_arguments():
    rng = np.random.default_rng(3)
    x, y = correlated_features(rng, 400, 20), correlated_features(rng, 300, 20, shift=1.0)
    assert frechet_distance(*stats_of(x), *stats_of(y)) == pytest.approx(
        frechet_distance(*stats_of(y), *stats_of(x)), rel=1e-10
    )


def test_identical_sets_give_zero():
    rng = np.random.default_rng(4)
    x = correlated_features(rng, 500, 24)
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(*stats_of(x), *stats_of(x)) == pytest.approx(0.0, abs=1e-9)


def test_low_rank_path_equals_full_path_and_warns():
    rng = np.random.default_rng(5)
    d = 64
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    x = correlated_features(rng, 40, d, mix=mix)
    y = correlated_features(rng, 50, d, shift=0.1, mix=mix)
    with pytest.warns(UserWarning, match="fewer samples than feature dimensions"):
        low_rank = frechet_distance_from_features(x, y)
    full = frechet_distance(*stats_of(x), *stats_of(y))
    assert np.isfinite(low_rank)
    assert low_rank == pytest.approx(full, rel=1e-9)


def test_low_rank_path_with_one_large_set():
    # One side has more rows than d: it is reduced by QR before the SVD.
    rng = np.random.default_rng(6)
    x, y = correlated_features(rng, 30, 48), correlated_features(rng, 500, 48, shift=0.2)
    with pytest.warns(UserWarning):
        low_rank = frechet_distance_from_features(x, y)
    assert low_rank == pytest.approx(frechet_distance(*stats_of(x), *stats_of(y)), rel=1e-9)


def test_no_warning_with_enough_samples():
    rng = np.random.default_rng(7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance_from_features(rng.normal(size=(50, 8)), rng.normal(size=(60, 8)))


def test_cholesky_and_eigh_factors_agree():
    from tfx_gan.metrics import fid

    rng = np.random.default_rng(11)
    s1, s2 = np.cov(correlated_features(rng, 200, 30), rowvar=False), np.cov(correlated_features(rng, 200, 30), rowvar=False)
    with_cholesky = fid._trace_sqrt_product(s1, s2)
    factor = fid._sqrt_psd_factor(s1)
    inner = factor.T @ s2 @ factor
    with_eigh = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)))
    assert with_cholesky == pytest.approx(with_eigh, rel=1e-10)


def test_constant_feature_matches_sqrtm_on_the_other_features():
    # A dead (constant) feature makes the covariance singular even with N > d: Cholesky fails and
    # the eigh factor is used. The constant dimension only adds its mean gap and S2's variance.
    rng = np.random.default_rng(12)
    x, y = correlated_features(rng, 800, 10), correlated_features(rng, 900, 10, shift=0.2)
    x[:, 0] = 0.5
    expected = textbook_fid(*stats_of(x[:, 1:]), *stats_of(y[:, 1:]))
    expected += (0.5 - y[:, 0].mean()) ** 2 + y[:, 0].var(ddof=1)
    assert frechet_distance_from_features(x, y) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance_from_features(y, x) == pytest.approx(expected, rel=1e-9)


def test_singular_covariances_stay_real_and_finite():
    rng = np.random.default_rng(8)
    x = np.zeros((10, 6))
    x[:, :2] = rng.normal(size=(10, 2))
    y = rng.normal(size=(10, 6))
    value = frechet_distance(*stats_of(x), *stats_of(y))
    assert isinstance(value, float) and np.isfinite(value) and value >= 0


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "different dimensions"),
        ((np.zeros(3), np.eye(4), np.zeros(3), np.eye(3)), "sigma1"),
        ((np.zeros(3), np.eye(3), np.zeros(3), np.triu(np.ones((3, 3)))), "not symmetric"),
        ((np.full(3, np.nan), np.eye(3), np.zeros(3), np.eye(3)), "NaN"),
        ((np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)), "mu1"),
        ((np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2)), "sigma1 is not positive semi-definite"),
        ((np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -1.0])), "sigma2 is not positive semi-definite"),
    ],
)
def test_bad_gaussians_raise(args, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(*args)


@pytest.mark.parametrize(
    "feats1, feats2, message",
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "different feature dimensions"),
        (np.zeros((1, 3)), np.zeros((5, 3)), "at least 2 samples"),
        (np.zeros(5), np.zeros((5, 3)), "2-D"),
        (np.full((5, 3), np.inf), np.zeros((5, 3)), "NaN or infinite"),
    ],
)
def test_bad_features_raise(feats1, feats2, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance_from_features(feats1, feats2)


def test_feature_stats_merge_equals_whole():
    rng = np.random.default_rng(9)
    x = correlated_features(rng, 301, 10, shift=2.0)
    whole = FeatureStats.from_features(x)
    merged = FeatureStats.from_features(x[:100]).merge(FeatureStats.from_features(x[100:250]))
    merged = merged.merge(FeatureStats.from_features(x[250:]))
    assert merged.count == 301
    np.testing.assert_allclose(merged.mean(), x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance(), np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(merged.covariance(), whole.covariance(), rtol=1e-12, atol=1e-12)
    assert FeatureStats.empty(10).merge(whole).count == 301


def test_feature_stats_npz_round_trip_and_fid(tmp_path):
    rng = np.random.default_rng(10)
    x, y = correlated_features(rng, 200, 8), correlated_features(rng, 150, 8, shift=0.5)
    path = str(tmp_path / "sub" / "stats.npz")
    FeatureStats.from_features(x).to_npz(path)
    loaded = FeatureStats.from_npz(path)
    assert loaded.count == 200
    np.testing.assert_array_equal(loaded.outer_sum, x.T @ x)
    assert frechet_distance_from_stats(loaded, FeatureStats.from_features(y)) == pytest.approx(
        frechet_distance_from_features(x, y), rel=1e-9
    )
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["stats.npz"]  # no temp file left


def test_feature_stats_bad_inputs_raise(tmp_path):
    stats = FeatureStats.from_features(np.ones((3, 4)))
    with pytest.raises(ValueError, match="dimensions 4 and 5"):
        stats.merge(FeatureStats.empty(5))
    with pytest.raises(ValueError, match="at least 2 samples"):
        FeatureStats.from_features(np.ones((1, 4))).covariance()
    with pytest.raises(ValueError, match="outer_sum must have shape"):
        FeatureStats(2, np.zeros(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no FeatureStats file"):
        FeatureStats.from_npz(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="different feature dimensions"):
        frechet_distance_from_stats(stats, FeatureStats.from_features(np.ones((3, 5))))
