"""Build, train and serve a Rasa 3.6 server next to the bot (a separate Python 3.10 virtualenv)."""
