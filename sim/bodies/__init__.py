"""Bodies: the `Embodiment` data type, procedural generators and file loaders."""

from .embodiment import ActionSpace, Embodiment, JointInfo, SensorLayout
from .registry import get, names, sample

__all__ = ["ActionSpace", "Embodiment", "JointInfo", "SensorLayout", "get", "names", "sample"]
