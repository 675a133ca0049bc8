"""The interoperability matrix: result records from a test run, rendered as docs/interop.md.

Tests append one JSON line per cell with :func:`record` (to $KI_MATRIX_RESULTS, default
results.jsonl in the run's directory); at the end of a run the conftest (or a person) renders:

    python tests/interop/matrix.py RESULTS.jsonl [-o docs/interop.md] [--date ISO-DATE]

The document is generated, never edited by hand: it says which run produced it.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

ENV_RESULTS = "KI_MATRIX_RESULTS"
OURS = "isakmpd-py"


@dataclass(frozen=True)
class CellResult:
    """One cell of the matrix.

    ``peer``: the other implementation ("strongSwan 5.9.8 (kernel-libipsec)", "libreswan 4.10",
    "isakmpd-py"); ``under_test``: whose interoperability the row shows (isakmpd-py, or a peer
    for the harness's own reference rows); ``role``: the role of ``under_test``
    ("initiator"/"responder"); ``phase1``: "main-psk", "aggressive-psk", "main-rsa";
    ``phase2``: "tunnel", "tunnel+pfs", "transport", ...; ``outcome``: "pass" or "fail" (or
    "phase1-only" where Quick Mode cannot finish by design, said in ``note``);
    the three checks are None when not applicable (not measured), else True/False."""

    peer: str
    role: str
    phase1: str
    phase2: str
    suite: str
    outcome: str
    spis_agree: bool | None = None
    keys_agree: bool | None = None
    ping: bool | None = None
    where: str = "host"
    under_test: str = OURS
    note: str = ""

    @classmethod
    def from_json(cls, data: dict[str, object]) -> CellResult:
        """A record from its JSON object; unknown keys are an error (a typo must not vanish)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown result fields {sorted(unknown)}")
        return cls(**data)  # type: ignore[arg-type]


Sink = Callable[[CellResult], None]


def results_path() -> Path:
    """Where :func:`record` appends: $KI_MATRIX_RESULTS or ./interop-results.jsonl."""
    return Path(os.environ.get(ENV_RESULTS, "interop-results.jsonl"))


def record(result: CellResult, path: Path | None = None) -> None:
    """Append one result line (under a lock: pytest -n 2 workers share the file)."""
    target = path or results_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(asdict(result), sort_keys=True) + "\n")
        fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class Cell:
    """A cell being measured: the test sets the checks as it makes them (see :func:`cell`)."""

    fields: dict[str, str]
    spis_agree: bool | None = None
    keys_agree: bool | None = None
    ping: bool | None = None
    note: str = ""


@contextmanager
def cell(sink: Sink, *, peer: str, role: str, phase1: str,
         phase2: str, suite: str, where: str = "host", under_test: str = OURS,
         note: str = "") -> Iterator[Cell]:
    """Measure one cell: the body sets ``c.spis_agree`` etc. and asserts; on leaving, the
    result goes to ``sink`` as "pass", or as "fail" with the first line of the error in the
    note (the exception still propagates, so the test fails too)."""
    c = Cell({"peer": peer, "role": role, "phase1": phase1, "phase2": phase2, "suite": suite,
              "where": where, "under_test": under_test}, note=note)
    outcome = "fail"
    try:
        yield c
        outcome = "pass"
    except BaseException as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        first = re.sub(r"/\S*/", "", first)[:120]  # temporary paths say nothing in the doc
        c.note = f"{c.note}; {first}" if c.note else first
        raise
    finally:
        sink(CellResult(outcome=outcome, spis_agree=c.spis_agree, keys_agree=c.keys_agree,
                        ping=c.ping, note=c.note, **c.fields))


def load(path: Path) -> list[CellResult]:
    """Every record of a results file; a bad line names the file and line."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(CellResult.from_json(json.loads(line)))
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path}:{n}: {e}") from e
    return out


def _mark(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_ORDER = {"main-psk": 0, "aggressive-psk": 1, "main-rsa": 2}


def _key(r: CellResult) -> tuple[str, str, str, int, str, str, str]:
    return (r.under_test, r.where, r.peer, _ORDER.get(r.phase1, 9), r.phase2, r.suite, r.role)


def _table(rows: Sequence[CellResult], with_subject: bool) -> list[str]:
    head = ["Peer", "Where", "Role", "Phase 1", "Phase 2", "Suite", "Outcome",
            "SPIs agree", "Keys agree", "Ping", "Note"]
    if with_subject:
        head.insert(0, "Under test")
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in sorted(rows, key=_key):
        outcome = r.outcome if r.outcome == "pass" else f"**{r.outcome}**"
        cells = [r.peer, r.where, r.role, r.phase1, r.phase2, r.suite, outcome,
                 _mark(r.spis_agree), _mark(r.keys_agree), _mark(r.ping), r.note]
        if with_subject:
            cells.insert(0, r.under_test)
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out


def render(results: Iterable[CellResult], date: str, environment: str = "") -> str:
    """The Markdown document: header with the run date, the matrix, the harness's reference
    rows, and a count per outcome."""
    rows = list(results)
    ours = [r for r in rows if r.under_test == OURS]
    reference = [r for r in rows if r.under_test != OURS]
    counts: dict[str, int] = {}
    for r in ours:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    lines = ["# Interoperability matrix", "",
             f"Generated by `tests/interop/matrix.py` from the interop test run of {date}; "
             "do not edit by hand (re-run the interop tests to refresh it).", ""]
    if environment:
        lines += [environment, ""]
    lines += ["Columns: the peer implementation; where the run happened (\"host\": the host "
              "kernel, which has XFRM but no ESP, so SA installs are answered by the fakesa "
              "shim that logs their keys, and only charon's kernel-libipsec carries ESP, in "
              "userspace; \"uml\": User-Mode Linux 6.1, real kernel ESP on both sides); the "
              "role of the implementation under test; the Phase 1 mode and authentication; the "
              "Phase 2 mode; the suite; whether both sides reported the same SPIs; whether the "
              "ESP keys each side installed (or logged) are equal; whether a ping crossed the "
              "tunnel with the ESP counters moving on both sides (— = not measured there).",
              ""]
    lines.append("## isakmpd-py against the peers")
    lines.append("")
    if ours:
        lines += _table(ours, with_subject=False)
        lines += ["", "Totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
                  ""]
    else:
        lines += ["No cell with isakmpd-py ran in this run.", ""]
    if reference:
        lines += ["## Reference pairs (the harness checked with the peers alone)", ""]
        lines += _table(reference, with_subject=True)
        lines.append("")
    return "\n".join(lines)


def environment_line() -> str:
    """Kernel and peer versions of this machine, for the document's header."""
    parts = [f"Kernel {platform.release()}"]
    for pkg in ("strongswan-charon", "libreswan"):
        version = _dpkg_version(pkg)
        if version:
            parts.append(f"{pkg} {version}")
    return "Environment: " + ", ".join(parts) + "."


def _dpkg_version(pkg: str) -> str:
    import subprocess

    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if out.returncode == 0 and out.stdout:
        return out.stdout
    cache = Path(os.environ.get("KI_CACHE", "/var/cache/isakmpd-py-tests")) / "libreswan"
    debs = sorted(cache.glob(f"{pkg}_*.deb"))
    return debs[-1].name.split("_")[1] if debs else ""


def write(results_file: Path, output: Path, date: str | None = None) -> str:
    """Render ``results_file`` into ``output``; the text written."""
    when = date or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = render(load(results_file), when, environment_line())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: results file in, Markdown out."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/interop.md"))
    ap.add_argument("--date", help="the run date to print (default: now, UTC)")
    args = ap.parse_args(argv)
    try:
        write(args.results, args.output, args.date)
    except (OSError, ValueError) as e:
        print(f"matrix: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
