"""The demo re-scoring model: a small CNN trained on images rendered from the simulator's latents.

``specs/<model>.toml`` are its re-scoring specs (adapter ``module``), the weights sit beside them
as safetensors, and ``train.py`` is the script that produced them.
"""

from pathlib import Path

HERE = Path(__file__).parent


def spec_path(model_name: str) -> Path | None:
    """The shipped demo spec for a simulated model's name, if there is one."""
    path = HERE / f"{model_name}.toml"
    return path if path.is_file() else None
