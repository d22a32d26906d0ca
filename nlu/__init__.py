"""Triage: intent classification with out-of-scope detection, and urgency with reasons."""
