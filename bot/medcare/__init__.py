"""Medication support, naloxone and messages from the care team (issue 22): rules and jobs, no telegram."""
