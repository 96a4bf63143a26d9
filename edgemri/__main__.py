"""``python -m edgemri``: the same CLI as the ``edgemri`` console script (the demo runs its stages so)."""

from __future__ import annotations

import sys

from edgemri.cli import main

if __name__ == "__main__":
    sys.exit(main())
