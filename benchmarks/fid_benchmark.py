"""FID benchmark: this library's exact symmetric FID vs the scipy.linalg.sqrtm formulation.

    python -m benchmarks.fid_benchmark [--out outputs/benchmarks/fid.json] [--dim 2048] [--sizes 10000 500]

Both sides start from the same [N, d] feature arrays (correlated Gaussians, d=2048 like
InceptionV3 pool3). Two timings: end to end (means, unbiased covariances, distance; the
covariances cost both sides the same ~2-3 s at N=10,000) and the distance alone from precomputed
(mu, sigma), the case when the reference statistics are cached. The reference is pytorch-fid's ``calculate_frechet_distance`` (including its fix that
adds 1e-6 to the covariance diagonals when the sqrtm product is singular). With N < d the
covariances are singular: sqrtm's value is then ill-defined, and both values are reported anyway.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import scipy.linalg

from tfx_gan.metrics.fid import frechet_distance, frechet_distance_from_features


def pytorch_fid_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's formula (sqrtm of the non-symmetric product, offset fix); returns (value, notes)."""
    notes = []
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        notes.append(f"singular product: added {eps} to the covariance diagonals")
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            # pytorch-fid raises ValueError here; we keep the real part so the value can be shown.
            notes.append(f"imaginary component {np.max(np.abs(covmean.imag)):.3g} (pytorch-fid raises here)")
        covmean = covmean.real
    value = diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(value), notes


def sqrtm_fid_from_features(feats1, feats2):
    mu1, sigma1 = np.mean(feats1, axis=0), np.cov(feats1, rowvar=False)
    mu2, sigma2 = np.mean(feats2, axis=0), np.cov(feats2, rowvar=False)
    return pytorch_fid_frechet_distance(mu1, sigma1, mu2, sigma2)


def correlated_features(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two related sets of correlated Gaussian features (a real-like and a generated-like set)."""
    rng = np.random.default_rng(seed)
    # Mixing matrix with singular values in [0.3, 1.5]: covariances are correlated but
    # well-conditioned once N >> d, so sqrtm is a valid reference there.
    q1, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    q2, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    mix = (q1 * np.linspace(0.3, 1.5, dim)) @ q2
    perturbed = mix + 0.05 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
    real = rng.normal(size=(n, dim)) @ mix
    fake = rng.normal(size=(n, dim)) @ perturbed + 0.05
    return real, fake


def _timed(fn, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def run(sizes, dim: int, repeats: int, seed: int) -> list[dict]:
    real, fake = correlated_features(max(sizes), dim, seed)
    rows = []
    for n in sizes:
        x, y = real[:n], fake[:n]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours, ours_s = _timed(lambda: frechet_distance_from_features(x, y), repeats)
        (sqrtm_value, notes), sqrtm_s = _timed(lambda: sqrtm_fid_from_features(x, y), repeats)
        # The distance alone, from precomputed (mu, sigma), as when reference stats are cached.
        gaussians = (x.mean(axis=0), np.cov(x, rowvar=False), y.mean(axis=0), np.cov(y, rowvar=False))
        ours_stats, ours_stats_s = _timed(lambda: frechet_distance(*gaussians), repeats)
        (sqrtm_stats, _), sqrtm_stats_s = _timed(lambda: pytorch_fid_frechet_distance(*gaussians), repeats)
        rows.append({
            "n": n,
            "dim": dim,
            "ours": ours,
            "sqrtm": sqrtm_value,
            "relative_difference": abs(ours - sqrtm_value) / abs(sqrtm_value),
            "ours_seconds": ours_s,
            "sqrtm_seconds": sqrtm_s,
            "speedup": sqrtm_s / ours_s,
            "method": "low-rank SVD (n < d)" if n < dim else "Cholesky/eigh + eigvalsh",
            "from_stats": {
                "ours": ours_stats,
                "sqrtm": sqrtm_stats,
                "ours_seconds": ours_stats_s,
                "sqrtm_seconds": sqrtm_stats_s,
                "speedup": sqrtm_stats_s / ours_stats_s,
            },
            "notes": list(dict.fromkeys(  # unique, in order (repeats re-issue the same warning)
                notes + [str(w.message).split(":")[0] for w in caught]
                + (["n < d: covariances are singular, so the sqrtm value is ill-defined"] if n < dim else [])
            )),
        })
    return rows


def format_table(rows: list[dict]) -> str:
    header = f"{'N':>6} {'ours':>12} {'sqrtm':>12} {'rel diff':>9} {'ours s':>8} {'sqrtm s':>8} {'speedup':>8}"
    lines = ["End to end from features (mean, covariance, distance):", header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['n']:>6} {r['ours']:>12.6g} {r['sqrtm']:>12.6g} {r['relative_difference']:>9.2e} "
            f"{r['ours_seconds']:>8.3f} {r['sqrtm_seconds']:>8.2f} {r['speedup']:>7.1f}x"
        )
    lines += ["", "Distance only, from precomputed (mu, sigma):", header, "-" * len(header)]
    for r in rows:
        s = r["from_stats"]
        rel = abs(s["ours"] - s["sqrtm"]) / abs(s["sqrtm"])
        lines.append(
            f"{r['n']:>6} {s['ours']:>12.6g} {s['sqrtm']:>12.6g} {rel:>9.2e} "
            f"{s['ours_seconds']:>8.3f} {s['sqrtm_seconds']:>8.2f} {s['speedup']:>7.1f}x"
        )
    lines.append("")
    for r in rows:
        lines.append(f"  N={r['n']}: ours via {r['method']}")
        for note in r["notes"]:
            lines.append(f"  N={r['n']}: {note}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/benchmarks/fid.json", help="where to write the table as JSON")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 500])
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs per timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from benchmarks.machine import print_machine

    machine = print_machine()
    if args.dim < 2 or min(args.sizes) < 2 or args.repeats < 1:
        parser.error("--dim and every --sizes value must be >= 2, --repeats >= 1")

    load_before = os.getloadavg()[0]
    rows = run(args.sizes, args.dim, args.repeats, args.seed)
    print(format_table(rows))
    print(f"load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({
                "benchmark": "fid",
                "reference": "pytorch-fid calculate_frechet_distance (scipy.linalg.sqrtm, 1e-6 offset fix)",
                "timing": f"end to end from features (mean, unbiased covariance, distance), best of {args.repeats}",
                "machine": {**machine, "load_average_1m_before_after": [load_before, os.getloadavg()[0]]},
                "rows": rows,
            }, f, indent=2)
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
