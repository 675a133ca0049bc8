#!/bin/sh
# PID 1 of the UML guest booted by tests/kernel/uml.py: the kernel hands unknown "key=value"
# boot parameters to init as environment, which is how the interpreter, the guest script and
# the run directory arrive here.
exec "$kxpython" "$kxguest" "$kxrun"
