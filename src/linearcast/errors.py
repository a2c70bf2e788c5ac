"""Exception types raised for users' mistakes (bad files, shapes, options)."""


class LinearcastError(Exception):
    """Base class of every error linearcast raises on purpose."""


class DataError(LinearcastError, ValueError):
    """A data file or array is missing, malformed or inconsistent.

    The message names the file, what was expected and what was found.
    """


class ConfigError(LinearcastError, ValueError):
    """An option or a combination of options is invalid."""


class TrainingDiverged(LinearcastError, RuntimeError):
    """The training or validation loss became NaN or infinite; the run stopped.

    The message names the epoch and step, the last finite loss, where the last good weights
    are, and the usual causes (learning rate, precision, data scale).
    """
