"""handshake_profile.py - deterministic count of the responder's work per handshake.

    .venv/bin/python bench/handshake_profile.py [HANDSHAKES] [TOP]      (default 20, 25)
    .venv/bin/python bench/handshake_profile.py --plain HANDSHAKES      (no tracing)
    .venv/bin/python bench/handshake_profile.py --time ROUNDS           (CPU time of replays)
    .venv/bin/python bench/handshake_profile.py --callgrind HANDSHAKES  (libpython instructions)

The wall-clock bench (handshake_bench.py) is noisy on a shared machine; this one is not.  It
records the initiators' datagrams of the bench's MODP-2048 Main Mode PSK + Quick Mode
handshakes once, then replays them to a fresh responder whose random source is seeded (so it
answers byte for byte as it did while recording; the replay checks that), and counts, with a
tracing hook, the Python bytecode instructions executed inside the responder's calls
(receive_datagram, datagrams_to_send, get_timer, next_event) -- the interpreted work the engine
adds to the cryptography floor.  The same seeds give the same count on every run.

Prints ``opcodes_per_handshake``, ``calls_per_handshake`` (Python function calls) and the TOP
functions by their own opcodes per handshake.  ``--plain`` replays without tracing (and with
the garbage collector off, so that where its runs fall cannot move the count), for
instruction counts including C code: run it under ``valgrind --tool=callgrind`` with 0 and with
N handshakes; the difference divided by N is the responder's instructions per handshake (the
recording, done alike in both runs, cancels out).  With PYTHONHASHSEED=0 it repeats; the
instructions in libpython (``callgrind_annotate`` per object file) are the interpreter's share,
which is what the engine can change -- OpenSSL's bignum work dwarfs it in instructions but not
in time, as interpreted code runs at a far lower rate per instruction.  ``--callgrind`` does
exactly that and prints ``libpython_instructions_per_handshake`` (valgrind is needed).
``--time`` replays all recorded handshakes ROUNDS times and prints the best round's responder
CPU time per handshake, crypto included.
"""

from __future__ import annotations

import gc
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from handshake_bench import Script, confs, forget, handshake, responder_turn

from ike.conf import Conf
from ike.crypto.rand import RandomSource
from ike.engine import Engine
from ike.kernel.fake import FakeKernel

Tracer = Callable[[types.FrameType, str, Any], Any]
RECORDED = 40  # handshakes recorded (the same in every run, whatever is replayed)
WARM_UP = 3


class ReplayRandom(RandomSource):
    """A seeded source about as cheap in Python as the OS one the bench's responder uses
    (the seeded RandomSource hashes in Python and would inflate the count)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._gen = random.Random(seed)

    def bytes(self, n: int) -> bytes:
        """``n`` bytes of the seeded stream."""
        return self._gen.randbytes(n)


class OpcodeCounter:
    """Counts bytecode instructions and calls per code object while ``run`` runs."""

    def __init__(self) -> None:
        self.opcodes: Counter[types.CodeType] = Counter()
        self.calls: Counter[types.CodeType] = Counter()
        self.owners: dict[types.CodeType, str] = {}

    def trace(self, frame: types.FrameType, event: str, arg: object) -> Tracer | None:
        """The global trace function: turns on per-opcode events in every new frame."""
        if event == "call":
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            self.calls[frame.f_code] += 1
            if frame.f_code.co_filename == "<string>" and frame.f_code not in self.owners:
                # a dataclass's generated method: name it after its class
                owner = frame.f_locals.get("self")
                self.owners[frame.f_code] = type(owner).__qualname__ if owner is not None else ""
        return self.local

    def local(self, frame: types.FrameType, event: str, arg: object) -> Tracer | None:
        """The per-frame trace function: one count per opcode."""
        if event == "opcode":
            self.opcodes[frame.f_code] += 1
        return self.local

    def run(self, fn: Callable[[], object]) -> object:
        """Call ``fn`` with counting on."""
        sys.settrace(self.trace)
        try:
            return fn()
        finally:
            sys.settrace(None)


def responder() -> Engine:
    """The long-lived responder, seeded so that its answers repeat."""
    return Engine(confs("-GRP14")[1], rand=ReplayRandom(1), kernel=FakeKernel(),
                  use_keynote=False)


def record(conf_a: Conf, b: Engine, seed: int) -> Script:
    """Run one handshake; what the responder got in each turn and what it answered."""
    script: Script = []
    handshake(conf_a, b, seed, script)
    return script


def replay(b: Engine, script: Script, counter: OpcodeCounter | None) -> float:
    """Feed a recorded handshake to ``b``; its answers must be those recorded.  The CPU
    seconds of the responder's turns."""
    spent = 0.0
    for now, batch, expected in script:
        if counter is None:
            t0 = time.process_time()
            replies, _ = responder_turn(b, batch, now)
            spent += time.process_time() - t0
        else:
            replies, _ = counter.run(partial(responder_turn, b, batch, now))  # type: ignore[misc]
        if [d for d, _s, _t in replies] != [d for d, _s, _t in expected]:
            raise SystemExit("the replay diverged from the recording")
    forget(b)
    return spent


def timed_replays(scripts: list[Script], rounds: int) -> float:
    """The best round's responder CPU milliseconds per replayed handshake (crypto included:
    it is the same in every run, so a difference is the engine's)."""
    best = float("inf")
    for _ in range(rounds):
        b = responder()
        for script in scripts[:WARM_UP]:
            replay(b, script, None)
        spent = sum(replay(b, script, None) for script in scripts[WARM_UP:])
        best = min(best, 1000 * spent / (len(scripts) - WARM_UP))
    return best


def _libpython_instructions(handshakes: int) -> int:
    """Instructions callgrind counts in libpython for a --plain run of ``handshakes``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "--plain", str(handshakes)],
                       env={**os.environ, "PYTHONHASHSEED": "0"}, check=True,
                       capture_output=True)
        report = subprocess.run(["callgrind_annotate", "--threshold=100", str(out)],
                                check=True, capture_output=True, text=True).stdout
    return sum(int(m.group(1).replace(",", "")) for m in
               re.finditer(r"^\s*([\d,]+) \(.*\[[^]]*libpython[^]]*\]\s*$", report, re.M))


def main() -> int:
    args = sys.argv[1:]
    if args and args[0] == "--callgrind":
        n = int(args[1]) if len(args) > 1 else RECORDED
        per = (_libpython_instructions(n) - _libpython_instructions(0)) // n
        print(f"libpython_instructions_per_handshake: {per}")
        return 0
    plain = bool(args) and args[0] == "--plain"
    timing = bool(args) and args[0] == "--time"
    if plain or timing:
        args = args[1:]
    n = int(args[0]) if args else 20
    top = int(args[1]) if len(args) > 1 else 25
    if n > RECORDED:
        raise SystemExit(f"at most {RECORDED} handshakes")
    conf_a = confs("-GRP14")[0]
    b = responder()
    scripts = [record(conf_a, b, seed) for seed in range(100, 100 + WARM_UP + RECORDED)]
    # Whether a full collection falls inside the replays depends on every allocation since
    # start-up; with what exists now frozen, young collections remain and counts repeat.
    gc.collect()
    gc.freeze()
    if timing:
        print(f"replay_responder_ms_modp2048: {timed_replays(scripts, n):.3f}")
        return 0
    b = responder()
    for script in scripts[:WARM_UP]:
        replay(b, script, None)
    if plain:
        # and no young collections either: where they fall shifts with any allocation, which
        # moved the instruction count by 1-2 % between otherwise equal runs
        gc.disable()
        for script in scripts[WARM_UP:WARM_UP + n]:
            replay(b, script, None)
        print(f"replayed_handshakes: {n}")
        return 0
    counter = OpcodeCounter()
    for script in scripts[WARM_UP:WARM_UP + n]:
        replay(b, script, counter)
    for code in [c for c in counter.opcodes if c.co_name == "responder_turn"]:
        del counter.opcodes[code]  # the harness, not the engine
        del counter.calls[code]
    total = sum(counter.opcodes.values())
    print(f"opcodes_per_handshake: {total / n:.0f}")
    print(f"calls_per_handshake: {sum(counter.calls.values()) / n:.0f}")
    print(f"{'opcodes':>8} {'calls':>6}  function")
    for code, ops in counter.opcodes.most_common(top):
        where = (counter.owners[code] if code in counter.owners
                 else f"{Path(code.co_filename).name}:{code.co_firstlineno}")
        print(f"{ops / n:8.0f} {counter.calls[code] / n:6.1f}  {code.co_qualname} ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
