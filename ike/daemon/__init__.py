"""The isakmpd daemon around the sans-I/O engine.

- ``cli``: the ``isakmpd`` command (start-up order of isakmpd.c);
- ``options``: the man page's options plus ``-N -S -T`` and ``--run-dir``;
- ``log``: debug classes and levels, syslog or stderr, report lines;
- ``fifo`` / ``scanf``: the FIFO commands with the reference's exact parsing;
- ``control``: what the commands and signals do; ``report``: the ``S`` and ``r`` formats;
- ``runtime``: asyncio sockets, the one timer, the connection checker, signals;
- ``pcap``: cleartext IKE capture; ``ifaddrs``: local addresses (Listen-on);
- ``privsep`` / ``wire_codec``: the privileged monitor and its checked requests.
"""
