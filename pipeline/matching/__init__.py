"""Matching: a library tile for every target cell, under a reuse rule.

:func:`match_cells` is the stage; :class:`ReuseRule` says how often a tile may
be used and how near to itself. Beneath them, pure kernels on ndarrays: the pair
cost and the KD-tree keys that bound it (:mod:`._scoring`), nearest searches
(:mod:`._nearest`), the capacitated assignment by column generation
(:mod:`._assign`, :mod:`._pricing`, :mod:`._transport`) and the repeat-distance
repair (:mod:`._repeats`).
"""
from ._assign import CapacitatedAssignment, assign_capacitated
from ._greedy import greedy_assignment
from ._match import Assignment, match_cells
from ._nearest import SEARCH_DEPTH, SEARCH_EPS, best_by_cost, nearest_tiles, pair_scoring, ranked_candidates
from ._rule import ReuseRule
from ._scoring import PairCost, VectorCost, euclidean_cost, grid_basis, grid_cost, grid_keys

__all__ = ["SEARCH_DEPTH", "SEARCH_EPS", "Assignment", "CapacitatedAssignment", "PairCost", "ReuseRule", "VectorCost",
           "assign_capacitated", "best_by_cost", "euclidean_cost", "greedy_assignment", "grid_basis", "grid_cost",
           "grid_keys", "match_cells", "nearest_tiles", "pair_scoring", "ranked_candidates"]
