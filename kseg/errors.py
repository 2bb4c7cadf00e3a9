"""The exceptions that mean "fix your input" (a missing file, a bad annotation, an
impossible config value), as opposed to a bug: commands and samples report these as
one line instead of a traceback.

    try:
        ...
    except kseg.errors.user_errors() as exc:
        print(f"error: {exc}")

May import: kseg.config, kseg.data, kseg.saving, kseg.utils, kseg.weights.
"""

__all__ = ["user_errors"]


def user_errors():
    """The tuple of exception types a user fixes by changing what they passed in."""
    from kseg.config import ConfigError
    from kseg.data.dataset import DataError
    from kseg.data.image_io import ImageReadError
    from kseg.saving.checkpoint import CheckpointError
    from kseg.utils.nonfinite import NonFiniteLossError
    from kseg.weights import WeightsError

    return (ConfigError, DataError, ImageReadError, FileNotFoundError, NotADirectoryError,
            IsADirectoryError, WeightsError, CheckpointError, NonFiniteLossError)
