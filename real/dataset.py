"""The dataset format moved to `xembody.models` (`dataset`, `dataset_meta`, `recorder`;
training reads it, so it sits below `real`); these names stay importable from here for the
recorders and scripts."""

from xembody.models.dataset import FORMAT, Dataset, Feature
from xembody.models.dataset_meta import dataset_body, read_meta, write_meta
from xembody.models.recorder import Recorder

__all__ = ["FORMAT", "Dataset", "Feature", "Recorder", "dataset_body", "read_meta", "write_meta"]
