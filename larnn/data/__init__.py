"""Data sources: UCI HAR, synthetic memory probes, labelled files of one's own (.ts, long CSV,
npz), user uploads; splits and normalisation."""

from larnn.data.dataset import SequenceDataset
from larnn.data.labelled import FileLimits, LabelledFile, labelled_datasets, read_labelled
from larnn.data.splits import (
    Normalizer,
    Split,
    group_cases,
    stratified_cases,
    subject_split,
)
from larnn.data.synthetic import PROBES, attention_on_truth, make_probe
from larnn.data.uci_har import (
    UciHarSpec,
    download_uci_har,
    find_uci_har,
    load_uci_har,
    uci_har_available,
    verify_uci_har,
)
from larnn.data.user_series import UserSeries, read_user_series

__all__ = [
    "FileLimits",
    "LabelledFile",
    "PROBES",
    "Normalizer",
    "SequenceDataset",
    "Split",
    "UciHarSpec",
    "UserSeries",
    "attention_on_truth",
    "download_uci_har",
    "find_uci_har",
    "group_cases",
    "labelled_datasets",
    "load_uci_har",
    "make_probe",
    "read_labelled",
    "read_user_series",
    "stratified_cases",
    "subject_split",
    "uci_har_available",
    "verify_uci_har",
]
