"""Named tuples returned by ops with several results (``torch.return_types``)."""

from engine.ops.reduction import MaxResult as max
from engine.ops.reduction import MinResult as min
from engine.ops.sorting import SortResult as sort
from engine.ops.sorting import TopkResult as topk

__all__ = ["max", "min", "sort", "topk"]
