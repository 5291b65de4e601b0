"""db-kill: what an acknowledgement promises when db dies mid-write, or the power goes
(experiment.py); the pure reading of its evidence, shared with the tests: evidence.py;
its picture: picture.py."""

from lab.experiments.builtin.db_kill.experiment import DbKill

__all__ = ["DbKill"]
