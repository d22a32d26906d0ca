"""Developer tools that are not part of the service (the Rasa side-car)."""
