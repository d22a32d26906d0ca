"""The conversation engine: one explicit turn pipeline and the pure decision policy."""
