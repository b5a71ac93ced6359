"""The candidate graph's assignment by auction (Bertsekas), with epsilon-scaling: each round of the capped assignment.

Every cell holds one *slot* of a tile, a tile has ``max_uses`` slots, and every
slot a price. A cell without a slot bids for the slot that costs it least
(pair cost + price), raising that slot's price until the cell is indifferent
between it and its second choice, plus ``eps``; the cell it outbids bids again.
When every cell holds a slot, each is within ``eps`` of its cheapest choice
(eps-complementary slackness), so the total is within ``n_cells * eps`` of the
graph's optimum. Epsilon-scaling runs that with a large ``eps`` first and a
smaller one each phase, keeping the prices, which is what makes it fast.

There are more slots than cells, so a slot left over may keep a price it took in
an earlier phase, which would spoil the prices as a dual solution; a *reverse*
auction then lowers the price of each slot left over to ``floor`` (the least
price of a held slot) or hands it to the cell that gains most from it. The
prices, shifted by ``floor``, are then dual prices that prove the bound
``sum_i min_j (cost_ij + price_j) - max_uses * sum_j price_j`` on the graph within
``n_cells * eps`` of the assignment's own cost.

At 100,000 x 1,000,000 a round's graph of 3.3 M edges takes OR-tools' min-cost
flow 9.5 s and this a fraction of a second (``tests/benchmarks/bench_assign.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["AuctionState", "auction"]

_SCALE_STEP = 6.0  # eps falls this much from one phase to the next


@njit(cache=True)
def _cheapest_two(slot_price: np.ndarray, first: int, cap: int) -> tuple[float, int, float]:
    low, low_slot, second = np.inf, -1, np.inf
    for s in range(first, first + cap):
        p = slot_price[s]
        if p < low:
            second, low, low_slot = low, p, s
        elif p < second:
            second = p
    return low, low_slot, second


@njit(cache=True)
def _forward(cell_ptr, edge_tiles, edge_costs, cap, slot_price, slot_owner, cell_slot, value, queue, top, eps,
             reach):
    """Bids of the cells in ``queue[:top]`` until every cell holds a slot."""
    while top > 0:
        top -= 1
        i = queue[top]
        best, best_slot, best_cost, second = np.inf, -1, 0.0, np.inf
        for e in range(cell_ptr[i], cell_ptr[i + 1]):
            low, low_slot, next_low = _cheapest_two(slot_price, edge_tiles[e] * cap, cap)
            c = edge_costs[e]
            if c + low < best:
                second = min(best, c + next_low)
                best, best_slot, best_cost = c + low, low_slot, c
            elif c + low < second:
                second = c + low
        if second == np.inf:  # a single slot within reach: bid as if a choice lay ``reach`` beyond it
            second = best + reach
        slot_price[best_slot] = second - best_cost + eps
        value[i] = second + eps
        outbid = slot_owner[best_slot]
        slot_owner[best_slot] = i
        cell_slot[i] = best_slot
        if outbid >= 0:
            cell_slot[outbid] = -1
            queue[top] = outbid
            top += 1


@njit(cache=True)
def _reverse(tile_ptr, edge_cells, tile_costs, cap, slot_price, slot_owner, cell_slot, value, eps, floor):
    """Slots left over priced above ``floor`` go down to it, or to the cell that gains most from them."""
    n_slots = slot_price.size
    queue = np.empty(n_slots, np.int64)
    top = 0
    for s in range(n_slots):
        if slot_owner[s] < 0 and slot_price[s] > floor:
            queue[top] = s
            top += 1
    while top > 0:
        top -= 1
        s = queue[top]
        j = s // cap
        best, best_cell, best_cost, second = -np.inf, -1, 0.0, -np.inf
        for e in range(tile_ptr[j], tile_ptr[j + 1]):
            gain = value[edge_cells[e]] - tile_costs[e]  # the most this slot could ask of that cell
            if gain > best:
                second, best, best_cell, best_cost = best, gain, edge_cells[e], tile_costs[e]
            elif gain > second:
                second = gain
        if best - eps <= floor:
            slot_price[s] = floor
            continue
        slot_price[s] = max(floor, second - eps)
        left = cell_slot[best_cell]
        slot_owner[left] = -1
        slot_owner[s] = best_cell
        cell_slot[best_cell] = s
        value[best_cell] = best_cost + slot_price[s]
        if slot_price[left] > floor:
            queue[top] = left
            top += 1


@njit(cache=True)
def _held_floor(slot_price, slot_owner):
    floor = np.inf
    for s in range(slot_price.size):
        if slot_owner[s] >= 0 and slot_price[s] < floor:
            floor = slot_price[s]
    return floor


class AuctionState:
    """Slot prices and holders, kept from one round's graph to the next (a warm start).

    Parameters
    ----------
    n_cells, n_tiles : int
    max_uses : int
        Slots per tile.
    """

    def __init__(self, n_cells: int, n_tiles: int, max_uses: int) -> None:
        self.cap = max_uses
        self.slot_price = np.zeros(n_tiles * max_uses, np.float64)
        self.slot_owner = np.full(n_tiles * max_uses, -1, np.int64)
        self.cell_slot = np.full(n_cells, -1, np.int64)

    @property
    def tiles(self) -> np.ndarray:
        """Each cell's tile."""
        return self.cell_slot // self.cap

    def tile_prices(self) -> np.ndarray:
        """Each tile's dual price: its cheapest slot's (0 for a tile with a slot to spare)."""
        return self.slot_price.reshape(-1, self.cap).min(axis=1)


def auction(cells: np.ndarray, tiles: np.ndarray, costs: np.ndarray, state: AuctionState, eps: float,
            warm: bool = False) -> AuctionState:
    """Assign each cell one slot of a tile on the graph of edges (``cells``, ``tiles``, ``costs``), within ``eps`` a cell.

    Parameters
    ----------
    cells, tiles : ndarray of int
        The graph's edges, sorted by cell (as :class:`~._graph.CandidateGraph` holds them); every
        cell has at least one, and the tiles' slots can hold every cell.
    costs : ndarray of float
        Each edge's cost.
    state : AuctionState
        Prices (and, with ``warm``, holders) to start from; updated in place and returned.
    eps : float
        The slack allowed per cell at the end: the total is within ``n_cells * eps`` of the graph's optimum.
    warm : bool
        Start from the prices and holders of a graph this one grew from: only cells
        whose new edges undercut their slot by more than a phase's eps bid again, the
        phases scaling down from the largest such slack; otherwise epsilon-scaling
        starts from the costs' spread.

    Returns
    -------
    AuctionState
        Every cell holds a slot; every slot left over costs 0 and every held one at least 0.
    """
    n_cells, cap = state.cell_slot.size, state.cap
    n_tiles = state.slot_price.size // cap
    cell_ptr = np.searchsorted(cells, np.arange(n_cells + 1)).astype(np.int64)
    edge_tiles, edge_costs = tiles.astype(np.int64), costs.astype(np.float64)
    by_tile = None  # the edges by tile, for the reverse auction: sorted only once it is needed
    reach = float(costs.max() - costs.min()) + 1.0
    standing = _standing(cells, cell_ptr, edge_tiles, edge_costs, state)  # the first phase's, shared with the start
    if warm and (state.cell_slot >= 0).all():
        # From the most any cell is above its cheapest edge: a new edge that undercuts its slot by far,
        # fought over at a tiny eps, made a price war of millions of bids (9 s on a 14,000-edge graph).
        slack = float((standing[0] - standing[1]).max())
        phases = [max(eps, min(reach / 8, slack / _SCALE_STEP))]
    else:
        phases = [max(eps, reach / 8)]
    while phases[-1] > eps:
        phases.append(max(eps, phases[-1] / _SCALE_STEP))
    for phase_eps in phases:
        # Cells already within this phase's eps of their cheapest choice keep their slots; the others bid.
        held = state.cell_slot >= 0
        value, cheapest = standing if standing is not None else _standing(cells, cell_ptr, edge_tiles, edge_costs,
                                                                          state)
        standing = None
        rebid = np.flatnonzero(value > cheapest + phase_eps)
        state.slot_owner[state.cell_slot[rebid][held[rebid]]] = -1
        state.cell_slot[rebid] = -1
        queue = np.empty(n_cells, np.int64)
        queue[:rebid.size] = rebid[::-1]
        _forward(cell_ptr, edge_tiles, edge_costs, cap, state.slot_price, state.slot_owner, state.cell_slot, value,
                 queue, rebid.size, phase_eps, reach)
        floor = _held_floor(state.slot_price, state.slot_owner)
        if ((state.slot_owner < 0) & (state.slot_price > floor)).any():
            if by_tile is None:
                by_tile = np.argsort(edge_tiles, kind="stable")
                tile_ptr = np.searchsorted(edge_tiles[by_tile], np.arange(n_tiles + 1)).astype(np.int64)
                edge_cells, tile_costs = cells[by_tile].astype(np.int64), edge_costs[by_tile]
            _reverse(tile_ptr, edge_cells, tile_costs, cap, state.slot_price, state.slot_owner, state.cell_slot,
                     value, phase_eps, floor)
        # Every slot left over is at most ``floor`` and every held one at least: raising the first to it
        # (which keeps every cell within eps) and taking it off all leaves spare slots at 0.
        spare = state.slot_owner < 0
        state.slot_price[spare] = floor
        state.slot_price -= floor
    return state


def _standing(cells: np.ndarray, cell_ptr: np.ndarray, edge_tiles: np.ndarray, edge_costs: np.ndarray,
              state: AuctionState) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's cost + price on the slot it holds (inf: none), and its cheapest edge's cost + tile price."""
    value = np.full(state.cell_slot.size, np.inf)
    held = state.cell_slot >= 0
    value[held] = (_own_costs(cells, edge_tiles, edge_costs, state.tiles) + state.slot_price[state.cell_slot])[held]
    return value, np.minimum.reduceat(edge_costs + state.tile_prices()[edge_tiles], cell_ptr[:-1])


def _own_costs(cells: np.ndarray, edge_tiles: np.ndarray, edge_costs: np.ndarray, held: np.ndarray) -> np.ndarray:
    """Each cell's cost on the edge to the tile it holds."""
    own = np.zeros(held.size)
    mine = edge_tiles == held[cells]
    own[cells[mine]] = edge_costs[mine]
    return own
