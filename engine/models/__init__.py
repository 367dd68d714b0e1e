"""Models: timm factory and zoo, weights, fine-tuning, evaluation, grid search, pretraining, checkpoints."""
from .checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from .evaluation import classification_report, predict
from .factory import ZOO, ModelInfo, WeightsUnavailable, ZooEntry, create_model, normalise
from .grid import GridResult, grid_search
from .pretrain import STRATEGIES, ImageSource, PretrainConfig, pretrain_backbone
from .train import TrainConfig, TrainResult, class_weights, evaluate_accuracy, fine_tune

__all__ = ["STRATEGIES", "ZOO", "GridResult", "ModelInfo", "PretrainConfig", "TrainConfig", "TrainResult",
           "WeightsUnavailable", "ZooEntry", "class_weights", "classification_report", "create_model",
           "evaluate_accuracy", "fine_tune", "grid_search", "load_checkpoint", "normalise", "predict",
           "ImageSource", "pretrain_backbone", "read_sidecar", "save_checkpoint"]
