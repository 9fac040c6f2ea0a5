"""Enrollment: invites, consent and onboarding (language, time zone, check-in time)."""
