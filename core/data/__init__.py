"""Image folders in, splits out: scanning.py (folder -> DatasetIndex), splits.py (seeded
stratified splits, materialize), store.py (splits saved by name in the workspace)."""

from core.data.scanning import (
    SPLIT_FOLDER_NAMES,
    DatasetIndex,
    Layout,
    Problem,
    Progress,
    fingerprint_files,
    scan,
)
from core.data.splits import SUBSETS, Split, SplitSpec, drop_files, make_split, materialize
from core.data.store import delete_split, list_splits, load_split, save_split, saved_twin, split_path
from core.errors import DataError

__all__ = [
    "SPLIT_FOLDER_NAMES",
    "SUBSETS",
    "DataError",
    "DatasetIndex",
    "Layout",
    "Problem",
    "Progress",
    "Split",
    "SplitSpec",
    "delete_split",
    "drop_files",
    "fingerprint_files",
    "list_splits",
    "load_split",
    "make_split",
    "materialize",
    "save_split",
    "saved_twin",
    "scan",
    "split_path",
]
