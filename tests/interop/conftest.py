"""Fixtures of the interop harness (tests/interop/harness): namespaces, peer directories.

Namespaces are named "ki<side>-<pid>-<n>" and always deleted; a short working directory under
/tmp per test holds each peer's files (unix socket paths must stay under 108 bytes), removed
afterwards unless KI_KEEP=1.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import matrix  # noqa: E402  (the harness lives beside the tests, not in a package)
from harness import netns  # noqa: E402


def need_root() -> None:
    """Skip (outside CI) without root or iproute2: namespaces cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    if shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.skip("needs Debian packages iproute2 and nftables")


@pytest.fixture(scope="session", autouse=True)
def _ki_remove_stale() -> None:
    """Namespaces a killed earlier run left behind (its pid is gone) are removed first."""
    if os.geteuid() == 0 and shutil.which("ip") is not None:
        netns.remove_stale()


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short private directory for peer configurations, sockets and logs."""
    d = Path(tempfile.mkdtemp(prefix="ki", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        if os.environ.get("KI_KEEP") != "1":
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def plain_topo() -> Iterator[netns.Topology]:
    """Two namespaces over a veth (a 10.77.0.1, b 10.77.0.2, inner .201/.202 on lo)."""
    need_root()
    with netns.topology("plain") as topo:
        yield topo


@pytest.fixture
def nat_topo() -> Iterator[netns.Topology]:
    """a (10.77.0.65) behind a masquerading router namespace (outside 10.77.0.3) to b."""
    need_root()
    with netns.topology("nat") as topo:
        yield topo


@pytest.fixture(scope="session")
def libreswan() -> Path:
    """libreswan 4.10 unpacked into the cache (apt-get download + dpkg-deb -x, runtime
    libraries installed when missing) and the fakesa shim built; the unpacked root."""
    from harness import pluto

    if os.geteuid() != 0:
        pytest.skip("needs root (apt-get, namespaces)")
    why = pluto.available()
    if why is not None:
        pytest.skip(why)
    root = pluto.ensure_libreswan()
    pluto.ensure_fakesa()
    return root


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A CA and certificates for sides "a" (10.77.0.1, behind NAT 10.77.0.65) and "b"
    (10.77.0.2), made once per session: {"a": Pki, "b": Pki}."""
    from harness import netns as n
    from harness.certs import make_pki

    return dict(make_pki(tmp_path_factory.mktemp("ki-pki"),
                         {"a": [f"{n.NET}.1", f"{n.NET}.65"], "b": [f"{n.NET}.2"]}))


_matrix_file: list[Path] = []


@pytest.fixture(scope="session")
def matrix_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's results file (JSON lines), shared by the xdist workers of one run:
    $KI_MATRIX_RESULTS, else ki-matrix.jsonl in the run's common temporary directory."""
    env = os.environ.get("KI_MATRIX_RESULTS")
    if env:
        path = Path(env)
    else:
        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        path = shared / "ki-matrix.jsonl"
    _matrix_file[:] = [path]
    return path


@pytest.fixture
def record_cell(matrix_results: Path) -> matrix.Sink:
    """``record_cell(CellResult(...))`` appends one cell of the matrix to the run's results."""

    def rec(result: matrix.CellResult) -> None:
        matrix.record(result, matrix_results)

    return rec


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With KI_MATRIX_DOC=path (CI: docs/interop.md), render the run's results there.  Each
    xdist worker renders at its end under a lock, so the last one to finish writes the whole
    run."""
    doc = os.environ.get("KI_MATRIX_DOC")
    if not doc or not _matrix_file or not _matrix_file[0].exists():
        return
    with open(_matrix_file[0].with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        matrix.write(_matrix_file[0], Path(doc))


@pytest.fixture
def fakesa_shim() -> Path:
    """The fakesa shim (built with gcc from tests/interop/fakesa.c), through which our daemon's
    SA installs go on the host kernel (which has no ESP)."""
    from harness import pluto

    why = pluto.fakesa_available()
    if why is not None:
        pytest.skip(why)
    return pluto.ensure_fakesa()
