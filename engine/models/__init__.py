"""Models: timm factory and zoo, weights, fine-tuning, evaluation, grid search, pretraining, checkpoints."""
from .checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from .factory import ZOO, ModelInfo, WeightsUnavailable, ZooEntry, create_model, normalise
from .train import TrainConfig, TrainResult, evaluate_accuracy, fine_tune

__all__ = ["ZOO", "ModelInfo", "TrainConfig", "TrainResult", "WeightsUnavailable", "ZooEntry", "create_model",
           "evaluate_accuracy", "fine_tune", "load_checkpoint", "normalise", "read_sidecar", "save_checkpoint"]
