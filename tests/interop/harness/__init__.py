"""The interop test harness: namespaces, peers (charon, pluto, our isakmpd), key logs, cells.

Modules (import as ``from harness import ...`` once tests/interop is on sys.path, which
tests/interop/conftest.py does):

- ``netns``: ``create(kind)`` / ``topology(kind)`` build "plain" (a 10.77.0.1 <-> b 10.77.0.2)
  or "nat" (a 10.77.0.65 behind a masquerading router, seen by b as 10.77.0.3) namespaces named
  ki<side>-<pid>-<n>, inner addresses 10.77.0.201 (a) / .202 (b) on lo; ``Namespace.run`` /
  ``.popen`` run commands inside; ``Topology.teardown`` deletes them.
- ``model``: ``Connection`` (one side's view of a connection, peer-neutral), ``SUITES``,
  ``Peer`` (the protocol every peer follows: launch/ready/start, initiate(conn),
  terminate(conn), ike_sas(), child_sas(), phase1_keys(), esp_keys(), wait_log(), stop(),
  crash()), ``EspKeys``, ``wait_for_log``.
- ``scenario.pair(topo, auth=, aggressive=, suite=, pfs=, tunnel=)``: both sides' Connections.
- ``charon.CharonPeer``, ``pluto.PlutoPeer``, ``isakmpd.IsakmpdPeer``: the three peers.
- ``keylog``: parsers for charon's level-4 log, pluto's "crypt private" log, the fakesa log.
- ``certs.make_pki``: a test CA and per-side certificates (PEM and PKCS#12).
- ``cells``: ``Case`` and ``run_cell`` (one matrix cell, host or UML), ``matrix_cases()``.
- ``lifecycle``: ``REKEY_CASES`` and ``run_rekey_cell`` (UML: our short Quick Mode lifetime,
  a rekey with a ping stream across it, no ping lost, the old SAs gone, new SPIs and keys
  agreeing).
"""
