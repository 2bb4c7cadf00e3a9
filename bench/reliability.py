"""How kseg meets bad input and killed runs: counts a careful user cares about.

    python bench/reliability.py [--kills 2] [--no-kills]

1. Runs every case of the generated corpus (tests/reliability/reliability_*.py: images,
   VIA / COCO annotations, mask folders, configs, weight and model files) and judges it:
   intended (a clear error naming the file / field / setting, or the data given, with a
   warning where kseg changed or dropped something), crash (an exception that is not a
   kseg error), silent (loaded, but not the data given) or unclear (a kseg error that
   does not say what is wrong).
2. `--kills` times: starts `kseg train unet` on synthetic data (tiny U-Net), SIGKILLs it at
   a random moment after its first checkpoint, checks every file left loads, resumes with
   `--weights last` and checks the epoch numbering. A resume survived when all of that
   held.
Prints a table per group and the totals: inputs tried, behaved as intended, crashes (must
be 0), silent wrong loads (must be 0), resumes survived.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from reliability_corpus import OUTCOMES, all_cases, judge  # noqa: E402


def run_corpus(root):
    """[(case, outcome, detail)] for every corpus case."""
    rows = []
    for case in all_cases():
        outcome, detail = judge(case, Path(root) / case.name)
        rows.append((case, outcome, detail))
    return rows


def kill_and_resume(root):
    """One SIGKILL + `--weights last` cycle; (survived, note)."""
    import test_kill_resume as kr

    from kseg.config import UNetConfig
    from kseg.models.unet import build_unet

    Path(root).mkdir(parents=True, exist_ok=True)
    logs = Path(root) / "logs"
    cli = [sys.executable, "-m", "kseg", *kr.UNET, "--logs", str(logs)]
    try:
        with open(Path(root) / "first.log", "w") as log:
            delay = kr._kill_after_first_checkpoint(kr._start(cli + ["--epochs", "400"], log),
                                                    logs, "kseg_kr_0001.weights.h5")
        (run,) = logs.iterdir()
        pattern = r"kseg_kr_(\d{4})\.weights\.h5$"
        done = kr._checkpoint_epochs(run, pattern)
        config = UNetConfig.from_json(run / "config.json")
        kr._check_every_file_loads(run, build_unet(config), pattern)
        result = subprocess.run(cli + ["--weights", "last", "--epochs", str(done[-1] + 1)],
                                cwd=ROOT, env=kr._env(), capture_output=True, text=True,
                                timeout=600)
        ok = (result.returncode == 0 and kr._checkpoint_epochs(run, pattern)
              == list(range(1, done[-1] + 2)) and kr._csv_epochs(run) == list(range(done[-1] + 1))
              and not list(run.glob(".tmp-*")))
        kr._check_every_file_loads(run, build_unet(config), pattern)
        return ok, f"killed {delay:.2f} s after checkpoint 1, at epoch {done[-1]}; resumed"
    except Exception as e:  # noqa: BLE001  (a failed cycle is a result, not a crash here)
        return False, f"{type(e).__name__}: {str(e)[:200]}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=2, help="kill-and-resume cycles")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as root:
        rows = run_corpus(root)
        resumes = [kill_and_resume(Path(root) / f"kill{i}") for i in range(args.kills)]
    groups = collections.defaultdict(collections.Counter)
    for case, outcome, _ in rows:
        groups[case.group][outcome] += 1
    print(f"{'group':<8} {'tried':>5} " + " ".join(f"{o:>8}" for o in OUTCOMES))
    for group, counts in groups.items():
        print(f"{group:<8} {sum(counts.values()):>5} "
              + " ".join(f"{counts[o]:>8}" for o in OUTCOMES))
    for case, outcome, detail in rows:
        if outcome != "intended" or args.verbose:
            print(f"  {outcome:<8} {case.name}: {detail[:160]}")
    for ok, note in resumes:
        print(f"  resume {'survived' if ok else 'FAILED'}: {note}")
    total = collections.Counter(outcome for _, outcome, _ in rows)
    print(f"\ninputs tried: {len(rows)}")
    print(f"behaved as intended: {total['intended']}")
    print(f"crashes: {total['crash']}")
    print(f"silent wrong loads: {total['silent']}")
    print(f"unclear errors: {total['unclear']}")
    print(f"resumes survived: {sum(ok for ok, _ in resumes)} of {len(resumes)}")
    return 0 if total["intended"] == len(rows) and all(ok for ok, _ in resumes) else 1


if __name__ == "__main__":
    sys.exit(main())
