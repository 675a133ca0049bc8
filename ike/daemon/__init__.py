"""The isakmpd daemon: command line, logging, FIFO, reports, capture, privilege separation and
the asyncio runtime around the sans-I/O engine."""
