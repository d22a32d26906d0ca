"""Human handoff: routing to teams, the handoff record with full context, the agents' queue."""
