"""Sales scripts: versioned graphs of steps, their runs inside conversations and calls, per-step analytics."""
