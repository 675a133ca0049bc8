"""Without -n the kernel work goes through the privileged monitor (XFRM, in a namespace)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 for a network namespace",
)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"kd-{os.getpid()}-{random.randint(0, 99999)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_kernel_requests_cross_the_monitor(netns: str, make_pair: Callable[..., Any]) -> None:
    pair = make_pair()
    for proc in (pair.east, pair.west):
        proc.prefix = ["ip", "netns", "exec", netns]
        proc.no_kernel = False
    pair.west.start()
    pair.east.start()
    pair.east.wait_log("phase 1 done")
    # the parent bound the IKE sockets and made them bypass IPsec: socket policies exist
    policies = subprocess.run(["ip", "-n", netns, "xfrm", "policy"], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
    assert policies.count("socket in") >= 2 and policies.count("socket out") >= 2
    # GETSPI and ADDSA went to the kernel through the monitor: either the SAs are there, or
    # (a kernel without ESP) the kernel's refusal came back through it to the engine: to the
    # responder's, which installs its inbound SA first (ike.exchange.install)
    done = pair.west.wait_log(r"phase 2 done|monitor: kernel request failed: (\w+)")
    if done.group(0).startswith("phase 2 done"):
        states = subprocess.run(["ip", "-n", netns, "xfrm", "state"], capture_output=True,
                                text=True, check=True).stdout  # fmt: skip
        assert states.count("proto esp") >= 2
    else:
        assert done.group(1).startswith("E")  # an errno name, relayed by the monitor
