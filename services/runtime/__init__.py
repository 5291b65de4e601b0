"""What every server shares at run time: settings, logging, signals, healthchecks."""
