"""PID 1 inside the User-Mode Linux guest that tests/kernel/uml.py boots (not run by hand).

The host root is mounted read-only (hostfs); this sets up /proc, /sys, /dev, tmpfs /run and
/tmp, mounts the host's run directory read-write, loads the IPsec kernel modules itself (the
host may have no kmod: finit_module(2) with modules.dep order), runs the command from the run
directory's ``conf.json`` with stdout/stderr to files there, writes ``rc`` and ``timing.json``,
and powers the guest off.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

_libc = ctypes.CDLL(None, use_errno=True)
SYS_FINIT_MODULE = 313  # x86_64, which is UML's user ABI here
RB_POWER_OFF = 0x4321FEDC
MS_RDONLY, MS_NOSUID, MS_NODEV = 1, 2, 4


def uptime() -> float:
    """Seconds since the guest kernel booted."""
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    """mount(2), raising OSError with the target's name."""
    os.makedirs(target, exist_ok=True)
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                   data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def tmp_tops(paths: list[str], run: str) -> list[str]:
    """The host directories directly under /tmp that these paths need (the tmpfs hides them)."""
    tops: list[str] = []
    for path in paths:
        parts = os.path.abspath(path).split("/")
        if len(parts) > 2 and parts[1] == "tmp":
            top = "/tmp/" + parts[2]
            if top != run and top not in tops:
                tops.append(top)
    return tops


def load_modules(names: list[str], kver: str) -> list[str]:
    """Load modules and their dependencies (modules.dep); returns the names that failed."""
    base = f"/usr/lib/uml/modules/{kver}"
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    with open(f"{base}/modules.dep") as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
            by_name[os.path.basename(path)[:-3].replace("-", "_")] = path
    done: set[str] = set()
    failed: list[str] = []

    def load(path: str) -> bool:
        if path in done:
            return True
        for dep in reversed(deps.get(path, [])):
            if not load(dep):
                return False
        fd = os.open(f"{base}/{path}", os.O_RDONLY)
        try:
            rc = _libc.syscall(SYS_FINIT_MODULE, fd, b"", 0)
            err = ctypes.get_errno()
        finally:
            os.close(fd)
        if rc != 0 and err != 17:  # EEXIST: already loaded
            return False
        done.add(path)
        return True

    for name in names:
        found = by_name.get(name.replace("-", "_"))
        if found is None or not load(found):
            failed.append(name)
    return failed


def main() -> None:
    """Set the guest up, run the command, power off (never returns)."""
    run = sys.argv[1]
    mount("proc", "/proc", "proc")
    t_init = uptime()
    mount("sysfs", "/sys", "sysfs")
    try:
        mount("devtmpfs", "/dev", "devtmpfs")
    except OSError:
        pass  # already mounted by the kernel
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    mount("none", run, "hostfs", 0, run)
    with open(f"{run}/conf.json") as f:
        conf = json.load(f)
    for host_dir in tmp_tops([conf["cwd"], sys.prefix, sys.executable, __file__], run):
        mount("none", host_dir, "hostfs", MS_RDONLY, host_dir)  # a checkout under /tmp (CI)
    with open("/proc/sys/kernel/modprobe", "w") as f:
        f.write("\n")  # empty: requests fail at once; every module we need is loaded below
    t0 = uptime()
    failed = load_modules(conf["modules"], os.uname().release)
    t_mods = uptime() - t0
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
    env = dict(conf["env"], PYTHONDONTWRITEBYTECODE="1", UML_RUN="1", KX_UML_RUN=run)
    t_cmd = uptime()
    with open(f"{run}/stdout", "wb") as out, open(f"{run}/stderr", "wb") as err:
        try:
            rc = subprocess.run(conf["argv"], cwd=conf["cwd"], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, timeout=conf["timeout"]).returncode
        except subprocess.TimeoutExpired:
            rc = 124
        except OSError as e:
            err.write(f"uml guest: cannot run the command: {e}\n".encode())
            rc = 127
    timing = {"kernel_to_init": t_init, "modules": t_mods, "command": uptime() - t_cmd,
              "modules_failed": failed}
    with open(f"{run}/timing.json", "w") as f:
        json.dump(timing, f)
    with open(f"{run}/rc", "w") as f:
        f.write(f"{rc}\n")
    os.kill(-1, signal.SIGKILL)  # whatever the command left behind (all but PID 1)
    time.sleep(0.1)
    os.sync()
    _libc.umount2(run.encode(), 0)
    os.sync()
    _libc.reboot(RB_POWER_OFF)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:  # PID 1 must never exit: report and power off
        import traceback

        print(f"uml guest init failed: {e!r}", flush=True)
        traceback.print_exc()
        sys.stderr.flush()
        _libc.reboot(RB_POWER_OFF)
