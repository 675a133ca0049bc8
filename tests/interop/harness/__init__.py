"""The interop test harness: namespaces, peers (charon, pluto), key logs, the matrix report."""
