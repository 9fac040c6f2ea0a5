"""Core: settings, database, models, encryption, audit log, people and logging. Imports no feature."""
