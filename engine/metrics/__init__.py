"""Metrics registry; importing this package registers every metric."""
from . import localisation  # noqa: F401  (registers)
from .localisation import iou_top5, iou_topk, pointing_game
from .registry import METRICS, MetricInfo, register_metric

__all__ = ["METRICS", "MetricInfo", "iou_top5", "iou_topk", "pointing_game", "register_metric"]
