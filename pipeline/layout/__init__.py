"""Layout: where the cells of a mosaic go and how large they are.

:func:`plan_print` chooses the grid and tile size that fill a print at a
resolution (:mod:`._print`).
"""
from ._print import PrintPlan, PrintSize, plan_print, printed_size

__all__ = ["PrintPlan", "PrintSize", "plan_print", "printed_size"]
