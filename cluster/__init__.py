"""Many server processes, one service: the change feed that keeps each process's view current, and background
jobs that run exactly once across the processes."""
