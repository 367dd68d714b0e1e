"""Metrics registry; importing this package registers every metric.  The MPRT sanity check is not a
registered metric: :mod:`engine.metrics.sanity`."""
from . import class_sensitivity, faithfulness, localisation, road  # noqa: F401  (registers)
from .faithfulness import deletion_auc, insertion_auc
from .localisation import auprc, energy_pg, iou_top5, iou_topk, mass_accuracy, pointing_game, rank_accuracy
from .registry import METRICS, MetricInfo, register_metric
from .road import road_lerf_auc, road_morf_auc

__all__ = ["METRICS", "MetricInfo", "auprc", "deletion_auc", "energy_pg", "insertion_auc", "iou_top5", "iou_topk",
           "mass_accuracy", "pointing_game", "rank_accuracy", "register_metric", "road_lerf_auc", "road_morf_auc"]
