"""Live status, heartbeats and the fast copy of the global kill flag in Redis."""
