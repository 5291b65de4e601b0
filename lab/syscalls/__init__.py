"""System calls of the lab's processes and socket scripts: strace, read and run."""
