"""The cluster transport's dual prices against an LP solver's optimum."""
import numpy as np
from scipy.optimize import linprog

from pipeline.matching._transport import _COST_SCALE, _transport_duals


def test_transport_duals_are_feasible_and_optimal():
    rng = np.random.default_rng(3)
    n = 12
    centres = rng.normal(size=(n, 3)) * 10
    distance = np.rint(np.linalg.norm(centres[:, None] - centres[None], axis=2) * _COST_SCALE) / _COST_SCALE
    demand = rng.integers(0, 30, n)
    supply = rng.integers(0, 50, n)
    supply[0] += demand.sum()  # enough supply in all; the spare goes to a dummy source
    cost = np.vstack([distance, np.zeros(n)])
    sources = np.append(demand, supply.sum() - demand.sum())
    # The primal optimum from HiGHS: x_ij >= 0, rows sum to sources, columns to supply.
    rows = np.kron(np.eye(n + 1), np.ones(n))
    cols = np.kron(np.ones(n + 1), np.eye(n))
    optimum = linprog(cost.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([sources, supply]),
                      bounds=(0, None), method="highs").fun

    v = _transport_duals(demand, supply, distance)
    u = (cost - v[None, :]).min(axis=1)  # the best u for these v: dual feasible by construction
    assert np.all(u[:, None] + v[None, :] <= cost + 1e-9)
    assert abs(sources @ u + supply @ v - optimum) < 1e-6 * optimum  # strong duality: the prices are optimal
