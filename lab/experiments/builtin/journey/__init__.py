"""journey: one request followed from a name to a process (docs/journey.md).

wire        the captured frames read back from a result: DNS, ARP, TCP (pure)
judgement   each step judged from the recorded observations (pure)
experiment  Journey: captures, flushes the neighbour entry, sends, traces the server
"""

from lab.experiments.builtin.journey.experiment import Journey, Target, target_of

__all__ = ["Journey", "Target", "target_of"]
