"""Kernel back ends: put SAs and flows into the kernel and report its ACQUIRE/EXPIRE events.

``ike.kernel.interface`` holds the commands, events and the :class:`KernelBackend` protocol;
``xfrm`` is Linux (netlink), ``none`` is ``-n`` and ``fake`` records commands for tests.
"""
