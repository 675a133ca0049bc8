"""KeyNote benchmarks: query rate on the reference testsuite, a 10,000-assertion delegation
graph, and the wall time of one `keynote verify` process.

Prints `name: value` lines. Anchors: the reference C library's in-library rate on this machine
(reference/keynote.md 6.4, 10,000 queries/s) and the wall time of a bare `python -c pass`
measured in the same run. Goals (issue 2): >= 20,000 queries/s, graph query < 50 ms,
`keynote verify` < 150 ms. `library_verify_cached_*` is the same work done through
Session(cache=True), which the CLI gets by passing that flag.

The main figures are wall-clock. When other jobs load the machine they inflate every wall
figure alike, so the CPU-time twins (`*_cpu*`, this process's or the child's CPU time) and the
load average are printed beside them.
"""

from __future__ import annotations

import os
import resource
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


def queries_per_s(seconds: float = 2.0) -> tuple[float, float]:
    """Best wall and CPU rate over rounds of 1,000 queries (the session is loaded once)."""
    s = testsuite_session()
    assert s.query(VALUES).value == "true"
    best_wall = best_cpu = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(1000):
            s.query(VALUES)
        w, c = time.perf_counter() - w0, time.process_time() - c0
        best_wall = max(best_wall, 1000 / w)
        best_cpu = max(best_cpu, 1000 / max(c, 1e-9))
    return best_wall, best_cpu


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


def graph_query_ms(runs: int = 7) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one query over the 10,000-assertion graph."""
    s = graph_session()
    walls, cpus = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        r = s.query(["false", "true"])
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        assert r.value == "true"
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def _wall_ms(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> tuple[float, float]:
    """Median wall and child-CPU milliseconds of running `cmd`."""
    subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)  # warm-up
    walls, cpus = [], []
    for _ in range(runs):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000


def verify_process_ms(runs: int = 15) -> tuple[tuple[float, float], tuple[float, float]]:
    """`keynote verify` on the testsuite and `python -c pass`: (wall, CPU) ms each."""
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


_LIBRARY_VERIFY = """
import sys
from keynote import Session
from keynote.envfile import parse_env_file, read_key_file
from keynote.fields import chunks
s = Session(cache=True)
for n, v in parse_env_file(open("test-env").read()):
    s.set_attribute(n, v)
for a in ["auth1", "auth2", "auth3", "auth4"]:
    s.add_authorizer(read_key_file(open(a).read(), a))
for i in range(1, 8):
    t = open(f"test-assertion{i}").read()
    s.add_assertions(t[: next(chunks(t)).end], trusted=True, source=f"test-assertion{i}",
                     strict=False)
assert s.query(["false", "maybe", "probably", "true"]).value == "true"
"""


def library_verify_ms(runs: int = 15) -> tuple[float, float]:
    """The same work as `keynote verify` on the testsuite, through Session(cache=True)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return _wall_ms([sys.executable, "-c", _LIBRARY_VERIFY], env, SUITE, runs)


def main() -> None:
    print(f"load_average_1min: {os.getloadavg()[0]:.2f}")
    wall, cpu = queries_per_s()
    print(f"queries_per_s: {wall:.0f}")
    print(f"queries_per_cpu_s: {cpu:.0f}")
    print(f"reference_queries_per_s: {REFERENCE_QPS}")
    wall, cpu = graph_query_ms()
    print(f"graph_query_ms: {wall:.1f}")
    print(f"graph_query_cpu_ms: {cpu:.1f}")
    (verify, verify_cpu), (python, python_cpu) = verify_process_ms()
    print(f"verify_process_ms: {verify:.1f}")
    print(f"verify_process_cpu_ms: {verify_cpu:.1f}")
    wall, cpu = library_verify_ms()
    print(f"library_verify_cached_process_ms: {wall:.1f}")
    print(f"library_verify_cached_process_cpu_ms: {cpu:.1f}")
    print(f"python_startup_ms: {python:.1f}")
    print(f"python_startup_cpu_ms: {python_cpu:.1f}")


if __name__ == "__main__":
    main()
