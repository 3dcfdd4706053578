"""The dataset format moved to `xembody.models.dataset` (training reads it, so it sits
below `real`); these names stay importable from here for the recorders and scripts."""

from xembody.models.dataset import (
    FORMAT,
    Dataset,
    Feature,
    Recorder,
    dataset_body,
    read_meta,
    write_meta,
)

__all__ = ["FORMAT", "Dataset", "Feature", "Recorder", "dataset_body", "read_meta", "write_meta"]
