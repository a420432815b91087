"""OmegaConf resolvers the configs in conf/ rely on (registered when wtc is imported)."""

from omegaconf import OmegaConf


def _xgb_device(device: str) -> str:
    """XGBoost's name for the configured device (``gpu`` -> ``cuda``)."""
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    return "cuda" if device == "gpu" else "cpu"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("xgb_device", _xgb_device, replace=True)
