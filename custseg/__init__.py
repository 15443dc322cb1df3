"""custseg, the commands: the `custseg` CLI (cli/), the sample data generator (sample/) and a
helper that runs a custseg server in the background (process.py).

This is the roof: it imports the stages (core -> features -> training -> serving / monitoring)
and nothing imports it back. The Bento does not ship it.
"""

from core import __version__

__all__ = ["__version__"]
