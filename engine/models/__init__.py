"""Models: timm factory and zoo, fine-tuning, safetensors checkpoints."""
from .checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from .factory import ZOO, ModelInfo, create_model, normalise
from .train import TrainConfig, TrainResult, evaluate_accuracy, fine_tune

__all__ = ["ZOO", "ModelInfo", "TrainConfig", "TrainResult", "create_model", "evaluate_accuracy", "fine_tune",
           "load_checkpoint", "normalise", "read_sidecar", "save_checkpoint"]
