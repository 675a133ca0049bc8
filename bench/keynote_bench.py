"""KeyNote benchmarks: query rate on the reference testsuite, a 10,000-assertion delegation
graph, and the wall time of one `keynote verify` process.

Prints `name: value` lines. Anchors: the reference C library's in-library rate on this machine
(reference/keynote.md 6.4, 10,000 queries/s) and the wall time of a bare `python -c pass`
measured in the same run. Goals (issue 2): >= 20,000 queries/s, graph query < 50 ms,
`keynote verify` < 150 ms.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keynote import Session  # noqa: E402
from keynote.envfile import parse_env_file, read_key_file  # noqa: E402
from keynote.fields import chunks  # noqa: E402

SUITE = Path("/work/shared/vectors/keynote/testsuite")
if not SUITE.is_dir():
    SUITE = ROOT.parent / "shared/vectors/keynote/testsuite"
VALUES = ["false", "maybe", "probably", "true"]
AUTH = ["auth1", "auth2", "auth3", "auth4"]
REFERENCE_QPS = 10_000


def testsuite_session() -> Session:
    s = Session()
    for name, value in parse_env_file((SUITE / "test-env").read_text()):
        s.set_attribute(name, value)
    for a in AUTH:
        s.add_authorizer(read_key_file((SUITE / a).read_text(), a))
    for i in range(1, 8):
        text = (SUITE / f"test-assertion{i}").read_text()
        s.add_assertions(text[: next(chunks(text)).end], trusted=True, source=f"a{i}")
    return s


def queries_per_s(seconds: float = 2.0) -> float:
    s = testsuite_session()
    assert s.query(VALUES).value == "true"
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        for _ in range(500):
            s.query(VALUES)
        n += 500
    return n / (time.perf_counter() - t0)


def graph_session(n: int = 10_000) -> Session:
    """A delegation DAG: POLICY -> k0; k_i licenses k_{i+1} || k_{i+2}; k_{n-1} -> bob."""
    parts = ['Authorizer: "POLICY"\nLicensees: "k0"\nConditions: app_domain == "IPsec policy";\n']
    cond = 'Conditions: app_domain == "IPsec policy" && esp_present == "yes" -> "true";\n'
    for i in range(n - 1):
        parts.append(f'Authorizer: "k{i}"\nLicensees: "k{i + 1}" || "k{i + 2}"\n{cond}')
    parts.append(f'Authorizer: "k{n - 1}"\nLicensees: "bob"\n{cond}')
    s = Session()
    s.add_assertions("\n".join(parts), trusted=True, source="graph")
    s.add_authorizer("bob")
    s.set_attribute("app_domain", "IPsec policy")
    s.set_attribute("esp_present", "yes")
    return s


def graph_query_ms(runs: int = 7) -> float:
    s = graph_session()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = s.query(["false", "true"])
        times.append(time.perf_counter() - t0)
        assert r.value == "true"
    return statistics.median(times) * 1000


def _wall_ms(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> float:
    subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def verify_process_ms(runs: int = 15) -> tuple[float, float]:
    """Median wall time of `keynote verify` on the testsuite, and of `python -c pass`."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: byte code is cached
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    script = shutil.which("keynote", path=str(Path(sys.executable).parent))
    tool = [script] if script else [sys.executable, "-m", "keynote"]
    args = ["verify", "-e", "test-env", "-r", ",".join(VALUES)]
    for a in AUTH:
        args += ["-k", a]
    for i in range(1, 8):
        args += ["-l", f"test-assertion{i}"]
    out = subprocess.run(tool + args, env=env, cwd=SUITE, capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("Query result = true"), out
    return (_wall_ms(tool + args, env, SUITE, runs),
            _wall_ms([sys.executable, "-c", "pass"], env, SUITE, runs))


def main() -> None:
    print(f"queries_per_s: {queries_per_s():.0f}")
    print(f"reference_queries_per_s: {REFERENCE_QPS}")
    print(f"graph_query_ms: {graph_query_ms():.1f}")
    verify, python = verify_process_ms()
    print(f"verify_process_ms: {verify:.1f}")
    print(f"python_startup_ms: {python:.1f}")


if __name__ == "__main__":
    main()
