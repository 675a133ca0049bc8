"""isakmpd.conf(5): parser, running configuration with built-in defaults, and transactions.

from ike.conf import Conf, ConfError
conf = Conf.load("/etc/isakmpd/isakmpd.conf")
conf.get_list("Phase 2", "Connections")
"""

from ike.conf.model import Conf, Transaction, check_secrecy, read_secret_file
from ike.conf.parse import ConfError

__all__ = ["Conf", "ConfError", "Transaction", "check_secrecy", "read_secret_file"]
