"""impaired-delivery: TCP and UDP across a lossy link (experiment.py); its picture:
picture.py."""

from lab.experiments.builtin.impaired_delivery.experiment import ImpairedDelivery

__all__ = ["ImpairedDelivery"]
