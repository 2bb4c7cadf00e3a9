"""`python -m kseg ...` runs the `kseg` command line."""

import sys

from kseg.cli import main

if __name__ == "__main__":
    sys.exit(main())
