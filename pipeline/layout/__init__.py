"""Layout: where the cells of a mosaic go, how large they are, and how much each matters.

:func:`plan_print` chooses the grid and tile size that fill a print at a
resolution (:mod:`._print`); :func:`priority_map`, :func:`cell_levels` and :func:`cell_weights` weigh
the cells by the importance of their region (:mod:`._priority`).
"""
from ._print import PrintPlan, PrintSize, plan_print, printed_size
from ._priority import AUTO, PriorityMap, auto_priority, cell_levels, cell_weights, priority_map

__all__ = ["AUTO", "PrintPlan", "PrintSize", "PriorityMap", "auto_priority", "cell_levels", "cell_weights", "plan_print",
           "priority_map", "printed_size"]
