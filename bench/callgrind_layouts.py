"""callgrind_layouts.py - libpython instructions per handshake, robust to the heap layout.

    .venv/bin/python bench/callgrind_layouts.py [HANDSHAKES] [LAYOUTS]   (default 20, 6)

``handshake_profile.py --callgrind`` repeats exactly for one tree, yet its figure moves by up
to 5 % with nothing but the memory layout: CPython 3.11's type method cache is indexed by a
type's version tag and the address of the attribute name, so which look-ups collide (and walk
the MRO, in ``find_name_in_mro``) changes with any allocation at start-up -- a longer path, an
environment variable, one more class anywhere.  Two trees compared by that one figure may
differ by their luck alone.  This runs the same measurement under LAYOUTS layouts (an
environment variable of 0 to some 100 bytes) and prints the median of the figure
(``libpython_instructions_per_handshake_median``) and of the figure without the method-cache
misses (``..._without_cache_misses_median``: ``find_name_in_mro``'s inclusive cost taken
out), which stays within some 0.3 % across layouts.  Compare trees by the latter.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROFILE = Path(__file__).resolve().parent / "handshake_profile.py"
PADS = (0, 7, 19, 33, 61, 97, 3, 13, 29, 47)
_LIBPYTHON = r"\[[^]]*libpython[^]]*\]\s*$"


def _annotate(out: Path, *options: str) -> str:
    return subprocess.run(["callgrind_annotate", "--threshold=100", *options, str(out)],
                          check=True, capture_output=True, text=True).stdout


def measure(pad: int, handshakes: int, tmp: str) -> tuple[int, int]:
    """(instructions in libpython, of which the method-cache misses) of one ``--plain`` run
    under the layout of ``pad``."""
    out = Path(tmp) / f"callgrind.{pad}.{handshakes}"
    env = {**os.environ, "PYTHONHASHSEED": "0", "LAYOUT_PAD": "x" * pad}
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    sys.executable, str(PROFILE), "--plain", str(handshakes)],
                   env=env, check=True, capture_output=True)
    total = sum(int(m.group(1).replace(",", "")) for m in
                re.finditer(r"^\s*([\d,]+) \(.*" + _LIBPYTHON, _annotate(out), re.M))
    misses = sum(int(m.group(1).replace(",", "")) for m in
                 re.finditer(r"^\s*([\d,]+) \(.*:find_name_in_mro " + _LIBPYTHON,
                             _annotate(out, "--inclusive=yes"), re.M))
    return total, misses


def main() -> int:
    """Print ``name: value`` lines."""
    handshakes = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    pads = PADS[:int(sys.argv[2]) if len(sys.argv) > 2 else 6]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        runs = {(pad, n): pool.submit(measure, pad, n, tmp) for pad in pads
                for n in (0, handshakes)}
        figures = {key: run.result() for key, run in runs.items()}
    plain, adjusted = [], []
    for pad in pads:
        (t0, m0), (t1, m1) = figures[pad, 0], figures[pad, handshakes]
        plain.append((t1 - t0) // handshakes)
        adjusted.append(((t1 - m1) - (t0 - m0)) // handshakes)
    print(f"libpython_instructions_per_handshake_layouts: {' '.join(map(str, plain))}")
    print(f"libpython_instructions_per_handshake_median: {statistics.median(plain):.0f}")
    print("libpython_instructions_per_handshake_without_cache_misses_layouts: "
          + " ".join(map(str, adjusted)))
    print("libpython_instructions_per_handshake_without_cache_misses_median: "
          f"{statistics.median(adjusted):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
