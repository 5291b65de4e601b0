"""`check`: a learner's own server, run in the lab and judged by what the kernel did.

spec.py        what the server must do: a built-in role, or a teacher's assignment file
properties.py  the properties, each with why it matters and the fix
server.py      the server as a lab process: started, watched, killed, started again
battery.py     each probe's socket script and what it expects (pure)
runner.py      the run: probes in order, the server's side recorded
evidence.py    the recording read probe by probe; held, failed or not judged (pure)
judge.py       each property judged from the recording (pure)
view.py        one line per property, and the evidence on request
"""

from lab.check.runner import check
from lab.check.spec import ROLES, Assignment, resolve

__all__ = ["ROLES", "Assignment", "check", "resolve"]
