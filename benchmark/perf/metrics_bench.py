"""Speed of the metric code against the bare library calls it wraps (``overfit-bench bench metrics``).

Prints three tables: exact W2 vs bare ``ot.dist`` + ``ot.emd2``; Gaussian W2 (eigh) vs a
``scipy.linalg.sqrtm`` implementation; CLIP ViT-B-32 / DINO ViT-S/16 feature extraction vs the bare
model forward on the same preprocessed batch (random weights: speed does not depend on them).
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_w2(sizes: tuple[int, ...] = (100, 500, 1000, 2000), d: int = 512) -> list[dict[str, float]]:
    import ot

    from metrics.wasserstein import _EMD_MAX_ITER, wasserstein2

    rows = []
    for n in sizes:
        rng = np.random.default_rng(n)
        x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.1
        a = np.full(n, 1.0 / n)

        def bare(x: np.ndarray = x, y: np.ndarray = y, a: np.ndarray = a) -> float:
            return float(ot.emd2(a, a, ot.dist(x, y, metric="sqeuclidean"), numItermax=_EMD_MAX_ITER))

        repeats = 5 if n <= 1000 else 3
        t_bare = _median_time(bare, repeats)
        t_ours = _median_time(functools.partial(wasserstein2, x, y), repeats)
        rows.append({"n": n, "d": d, "bare_s": t_bare, "ours_s": t_ours, "ratio": t_ours / t_bare})
    return rows


def _sqrtm_w2(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    import scipy.linalg

    cross = np.real(scipy.linalg.sqrtm(c1 @ c2))
    return float(
        np.sqrt(max(((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(cross), 0))
    )


def bench_gaussian(dims: tuple[int, ...] = (512, 768)) -> list[dict[str, float]]:
    from metrics.wasserstein import gaussian_wasserstein2

    rows = []
    for d in dims:
        rng = np.random.default_rng(d)
        a, b = rng.standard_normal((2 * d, d)), rng.standard_normal((2 * d, d)) * 1.5
        mu1, c1, mu2, c2 = a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T)
        args = (mu1, c1, mu2, c2)
        t_eigh = _median_time(functools.partial(gaussian_wasserstein2, *args), 5)
        t_sqrtm = _median_time(functools.partial(_sqrtm_w2, *args), 3)
        diff = abs(gaussian_wasserstein2(mu1, c1, mu2, c2) - _sqrtm_w2(mu1, c1, mu2, c2))
        rows.append({"d": d, "eigh_s": t_eigh, "sqrtm_s": t_sqrtm, "abs_diff": diff})
    return rows


def bench_features(batch: int = 32, repeats: int = 3) -> list[dict[str, Any]]:
    import torch

    from metrics.backbones import extract_image_features, load_clip, load_dino

    rows: list[dict[str, Any]] = []
    backbones = [load_clip("ViT-B-32", None), load_dino("vit_small_patch16_224.dino", None)]
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    for bb in backbones:
        forward = bb.model.encode_image if bb.kind == "clip" else bb.model

        def bare(forward: Callable[[torch.Tensor], torch.Tensor] = forward) -> None:
            with torch.inference_mode():
                forward(x)

        t_bare = _median_time(bare, repeats)
        t_ours = _median_time(functools.partial(extract_image_features, bb, x, batch_size=batch), repeats)
        rows.append(
            {
                "backbone": bb.name,
                "batch": batch,
                "bare_img_s": batch / t_bare,
                "ours_img_s": batch / t_ours,
                "ratio": t_bare / t_ours,
            }
        )
    return rows


def main(quick: bool = False) -> int:
    import torch

    print(f"# overfit-bench metric speed (torch threads: {torch.get_num_threads()})\n")
    sizes = (100, 500) if quick else (100, 500, 1000, 2000)
    print("## Exact W2, d=512: ours vs bare ot.dist + ot.emd2 (median seconds)")
    print("| n | bare s | ours s | ours/bare |\n|---|---|---|---|")
    for r in bench_w2(sizes):
        print(f"| {r['n']} | {r['bare_s']:.4f} | {r['ours_s']:.4f} | {r['ratio']:.2f} |")
    print("\n## Gaussian W2: symmetric eigh (ours) vs scipy.linalg.sqrtm (median seconds)")
    print("| d | eigh s | sqrtm s | |difference| |\n|---|---|---|---|")
    for r in bench_gaussian((512,) if quick else (512, 768)):
        print(f"| {r['d']} | {r['eigh_s']:.4f} | {r['sqrtm_s']:.4f} | {r['abs_diff']:.2e} |")
    print("\n## Feature extraction, 224 px, CPU: ours vs bare model forward on the same batch")
    print("| backbone | batch | bare img/s | ours img/s | ours/bare throughput |\n|---|---|---|---|---|")
    for r in bench_features(batch=8 if quick else 32, repeats=2 if quick else 3):
        print(
            f"| {r['backbone']} | {r['batch']} | {r['bare_img_s']:.1f} | {r['ours_img_s']:.1f} | {r['ratio']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
