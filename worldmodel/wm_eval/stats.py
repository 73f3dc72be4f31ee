"""Success rates with Wilson 95% intervals and the agreement of two rankings (scipy.stats)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (good for small n and rates near 0 or 1)."""
    if trials <= 0:
        raise ValueError(f"trials={trials}: need at least one episode")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes={successes} outside 0..{trials}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rank_agreement(twin: Sequence[float], world_model: Sequence[float]) -> dict[str, float]:
    """Spearman and Pearson correlation (with p-values) of per-policy success rates."""
    if len(twin) != len(world_model) or len(twin) < 3:
        raise ValueError(f"need >= 3 policies with both rates, got {len(twin)} twin and {len(world_model)} world-model")
    rho, p_rho = stats.spearmanr(twin, world_model)
    r, p_r = stats.pearsonr(twin, world_model)
    return {"spearman": float(rho), "spearman_p": float(p_rho), "pearson": float(r), "pearson_p": float(p_r),
            "policies": len(twin)}
