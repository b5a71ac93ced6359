"""Layout: where the cells of a mosaic go, how large they are, and how much each matters.

:func:`plan_print` chooses the grid and tile size that fill a print at a
resolution (:mod:`._print`); :func:`priority_map`, :func:`cell_levels` and
:func:`cell_weights` weigh the cells by the importance of their region
(:mod:`._priority`); :func:`subdivide` splits the detailed cells of a grid into
smaller ones, as :class:`QuadCells` (:mod:`._quadtree`); :func:`lay_out_cells`
puts these together into the cells matching takes (:mod:`._cells`).
"""
from ._cells import LaidOutCells, lay_out_cells
from ._print import PrintPlan, PrintSize, paper_size, plan_print, printed_size
from ._priority import AUTO, PriorityMap, auto_priority, cell_levels, cell_weights, priority_map
from ._quadtree import QuadCells, check_tile_halves, split_detail, subdivide

__all__ = ["AUTO", "LaidOutCells", "PrintPlan", "PrintSize", "PriorityMap", "QuadCells", "auto_priority", "cell_levels", "cell_weights", "check_tile_halves", "lay_out_cells",
           "paper_size", "plan_print", "priority_map", "printed_size", "split_detail", "subdivide"]
