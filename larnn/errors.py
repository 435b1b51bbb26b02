"""The project's own exception types: every bad input a user can hand in raises one of these."""


class LarnnError(Exception):
    """Base class: a message a person can act on, never a raw traceback."""


class ConfigError(LarnnError, ValueError):
    """A model or training configuration is invalid; the message names the field."""


class DataError(LarnnError, ValueError):
    """A dataset or uploaded series is malformed; the message names the row, column or key."""


class DownloadError(LarnnError):
    """A download failed (offline, truncated, wrong checksum or size)."""


class CheckpointError(LarnnError, ValueError):
    """A checkpoint is missing, corrupt, oversized or of an unknown format."""
