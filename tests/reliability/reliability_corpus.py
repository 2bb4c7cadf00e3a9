"""A corpus of bad and borderline inputs, generated into a folder, and how to judge them.

Each `Case` writes its files under a fresh folder, calls kseg's public API as a new user
would, and says what a careful user wants: "error" (a kseg error whose message matches
`match`, naming the file / field / setting), "warn" (loads, with a warning matching
`match`, and `check(result)` proves the data is the data given) or "ok" (loads and
`check(result)` holds). `judge` returns one of:

    intended   behaved as the case says
    crash      an exception that is not a kseg user error (TypeError, h5py's OSError, ...)
    silent     loaded, but not the data given, or without the promised warning
    unclear    a kseg error, but one whose message does not say what is wrong

Used by tests/reliability/test_corpus.py and bench/reliability.py (with this folder on
sys.path).
"""

import dataclasses
import re
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

OUTCOMES = ("intended", "crash", "silent", "unclear")


def user_errors():
    """The exception types that are kseg's "fix your input" errors."""
    from kseg.config import ConfigError
    from kseg.data import DataError, ImageReadError
    from kseg.saving.checkpoint import CheckpointError
    from kseg.weights import WeightsError

    return (ConfigError, DataError, ImageReadError, WeightsError, CheckpointError,
            FileNotFoundError, ValueError)


@dataclasses.dataclass
class Case:
    name: str
    group: str
    expect: str  # "error", "warn" or "ok"
    run: Callable  # run(folder: Path) -> result
    match: str = ""  # regex the error / warning text must match
    check: Callable = None  # check(result) -> bool for "warn" / "ok"


def judge(case, folder):
    """(outcome, detail) of running `case` in `folder` (see the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = case.run(folder)
        except user_errors() as e:
            text = f"{type(e).__name__}: {e}"
            if case.expect == "error" and re.search(case.match, str(e), re.S):
                return "intended", text
            return "unclear", text
        except Exception as e:  # noqa: BLE001  (what the corpus is for)
            return "crash", "".join(traceback.format_exception_only(type(e), e)).strip()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if case.expect == "error":
        return "silent", f"loaded without an error (warnings: {messages[:2]})"
    if case.expect == "warn" and not any(re.search(case.match, m, re.S) for m in messages):
        return "silent", f"no warning matching {case.match!r} (got {messages[:2]})"
    try:
        ok = case.check is None or bool(case.check(result))
    except Exception as e:  # noqa: BLE001
        return "silent", f"check failed: {type(e).__name__}: {e}"
    return ("intended", "ok") if ok else ("silent", "the loaded data is not the data given")


def all_cases():
    """Every case of the corpus, in a stable order."""
    import reliability_data
    import reliability_files

    return reliability_data.cases() + reliability_files.cases()


def run_all(root):
    """{case name: (outcome, detail)} for every case, each in `root/<case name>`."""
    return {case.name: judge(case, Path(root) / case.name) for case in all_cases()}
