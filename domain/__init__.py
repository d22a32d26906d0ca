"""Domain types shared by every layer: enums, dataclasses and the exception tree."""
