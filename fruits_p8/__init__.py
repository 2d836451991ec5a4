"""fruits_p8: image collections -> compact CNN features on Spark (local or AWS EMR)."""

__version__ = "0.1.0"
