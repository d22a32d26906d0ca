"""Staff-facing HTTP API (agents, editors, trainers, admins), authentication and shared HTTP plumbing."""
