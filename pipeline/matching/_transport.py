"""The transport between colour clusters that seeds the capped assignment's first graph.

Cells and tiles are clustered by colour; an exact transport of the cells' clusters
onto the tiles' clusters, and its dual prices, tell each cell which part of the
library the optimum is likely to send it to, even far from its nearest tiles. The
min-cost flow helper here also solves the assignment's candidate graphs.
"""
from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow
from pykdtree.kdtree import KDTree

_ROUGH = 1.0  # KD-tree searches that only gather candidates may be approximate: 3-7 x faster in 9-D
_COST_SCALE = 2.0**20  # the flow solver's costs are integers: 2^-20 colour-difference units, exact in float64


def _kd_query(tree: KDTree, points: np.ndarray, k: int, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each point's ``k`` nearest, as float64 and int64; approximate by ``eps``.

    With ``eps`` > 0 no point left out is nearer than the k-th returned distance / (1 + eps).
    """
    d, i = tree.query(np.ascontiguousarray(points, dtype=np.float32), k=k, eps=eps)
    return d.reshape(len(points), k).astype(np.float64), i.reshape(len(points), k).astype(np.int64)


def _solve_min_cost_flow(tails: np.ndarray, heads: np.ndarray, capacities: np.ndarray, unit_costs: np.ndarray,
                         supplies: np.ndarray, what: str) -> np.ndarray:
    """Flow on each arc of an optimal min-cost flow (OR-tools); integer costs, nodes numbered from 0."""
    flow = min_cost_flow.SimpleMinCostFlow()
    arcs = flow.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32),
                                                     capacities.astype(np.int64), unit_costs.astype(np.int64))
    flow.set_nodes_supplies(np.arange(len(supplies), dtype=np.int32), supplies.astype(np.int64))
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow on {what} ended with status {status}")
    return flow.flows(arcs)


def _kmeans(points: np.ndarray, k: int, rounds: int = 8) -> np.ndarray:
    centres = points[np.random.default_rng(0).choice(len(points), k, replace=False)].astype(np.float64)
    for _ in range(rounds):
        _, label = _kd_query(KDTree(centres.astype(np.float32)), points, 1)
        counts = np.bincount(label[:, 0], minlength=k)
        sums = np.stack([np.bincount(label[:, 0], points[:, d], minlength=k) for d in range(points.shape[1])], 1)
        centres[counts > 0] = sums[counts > 0] / counts[counts > 0, None]
    return centres.astype(np.float32)


def _transport_duals(demand: np.ndarray, supply: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Optimal dual prices ``v`` of the tile clusters in the transport of ``demand`` onto ``supply``.

    The transport is solved exactly as a min-cost flow on the dense cluster graph (a
    dummy source takes the spare supply at no cost). The prices are shortest-path
    potentials in the solution's residual graph: ``u_i + v_j <= distance_ij``, with
    equality wherever the plan moves mass, which makes them optimal duals.
    """
    n = len(demand)
    sources = np.append(demand, supply.sum() - demand.sum()).astype(np.int64)
    costs = np.rint(np.vstack([distance, np.zeros(n)]) * _COST_SCALE).astype(np.int64)
    tails, heads = (a.ravel() for a in np.meshgrid(np.arange(n + 1), n + 1 + np.arange(n), indexing="ij"))
    flows = _solve_min_cost_flow(tails, heads, np.full(tails.size, sources.sum()), costs.ravel(),
                                 np.concatenate([sources, -supply]), "the cluster transport")
    moved = flows.reshape(n + 1, n) > 0
    # Bellman-Ford from a virtual root joined to every node at 0: p_j <= p_i + c_ij on every
    # arc, and p_i <= p_j - c_ij back along every arc that carries mass.
    source_p, sink_p = np.zeros(n + 1), np.zeros(n)
    back = np.where(moved, -costs, np.inf)
    for _ in range(2 * n + 2):
        new_sink = np.minimum(sink_p, (source_p[:, None] + costs).min(axis=0))
        new_source = np.minimum(source_p, (new_sink[None, :] + back).min(axis=1))
        if np.array_equal(new_sink, sink_p) and np.array_equal(new_source, source_p):
            break
        source_p, sink_p = new_source, new_sink
    return sink_p / _COST_SCALE


def _transport_candidates(cell_keys: np.ndarray, tile_keys: np.ndarray, max_uses: int, k: int,
                          clusters: int = 256, per_cluster: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Edges toward where the optimum will send each cell, from an exact transport between colour clusters.

    Cells and tiles are clustered together (k-means on a sample); an exact transport
    moves the cells' clusters onto the tiles' clusters at least total centroid distance,
    and its dual prices rank, for each cell, the tile clusters to look in: by distance to the
    centroid minus the cluster's dual. Each cell gets its ``k`` nearest tiles in each of
    its ``per_cluster`` best clusters.
    """
    rng = np.random.default_rng(1)
    sample = np.concatenate([cell_keys[rng.choice(len(cell_keys), min(len(cell_keys), 20_000), replace=False)],
                             tile_keys[rng.choice(len(tile_keys), min(len(tile_keys), 20_000), replace=False)]])
    centres = _kmeans(sample, min(clusters, len(sample)))
    tree = KDTree(centres)
    cell_cluster = _kd_query(tree, cell_keys, 1)[1][:, 0]
    tile_cluster = _kd_query(tree, tile_keys, 1)[1][:, 0]
    demand = np.bincount(cell_cluster, minlength=len(centres))
    supply = np.bincount(tile_cluster, minlength=len(centres)) * max_uses
    distance = np.linalg.norm(centres[:, None, :].astype(np.float64) - centres[None, :, :], axis=2)
    dual = np.where(supply > 0, _transport_duals(demand, supply, distance), -np.inf)
    per_cluster = min(per_cluster, len(centres))
    best = _best_clusters(cell_keys, centres, dual, per_cluster).ravel()
    tiles_by_cluster, cells_by_cluster = np.argsort(tile_cluster, kind="stable"), np.argsort(best, kind="stable")
    tile_bounds = np.searchsorted(tile_cluster[tiles_by_cluster], np.arange(len(centres) + 1))
    cell_bounds = np.searchsorted(best[cells_by_cluster], np.arange(len(centres) + 1))
    found_cells, found_tiles = [], []
    for cluster in np.flatnonzero(np.diff(cell_bounds)):
        members = tiles_by_cluster[tile_bounds[cluster]:tile_bounds[cluster + 1]]
        cells = cells_by_cluster[cell_bounds[cluster]:cell_bounds[cluster + 1]] // per_cluster
        kk = min(k, members.size)
        _, local = _kd_query(KDTree(np.ascontiguousarray(tile_keys[members])), cell_keys[cells], kk, _ROUGH)
        found_cells.append(np.repeat(cells, kk))
        found_tiles.append(members[local].ravel())
    return np.concatenate(found_cells), np.concatenate(found_tiles)


def _best_clusters(cell_keys: np.ndarray, centres: np.ndarray, dual: np.ndarray, count: int,
                   block: int = 1 << 16) -> np.ndarray:
    """(n_cells, count) the clusters with the least distance to the centre minus dual, a block of cells at a time.

    Distances by |a|^2 - 2ab + |b|^2: no (cells, clusters, dims) temporary; blocks keep
    the (cells, clusters) ones small (2,000,000 cells at once took 15 GB).
    """
    centres64 = centres.astype(np.float64)
    centre_norms = (centres64**2).sum(axis=1)[None, :]
    best = np.empty((len(cell_keys), count), np.int64)
    for lo in range(0, len(cell_keys), block):
        keys = cell_keys[lo:lo + block].astype(np.float64)
        squared = (keys**2).sum(axis=1)[:, None] - 2 * (keys @ centres64.T) + centre_norms
        score = np.sqrt(np.maximum(squared, 0)) - dual[None, :]
        best[lo:lo + block] = np.argpartition(score, count - 1, axis=1)[:, :count]
    return best
