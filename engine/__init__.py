"""The engine: data, models, explanation methods, metrics, storage, the batch runner and the dashboard's
read layer (docs/architecture.md)."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout (app.py, data/experiments) -- one home
DEVICE_PATTERN = r"^(cpu|mps|cuda(:\d+)?)$"  # a torch device the runner accepts (--device, device = ...) -- one home
