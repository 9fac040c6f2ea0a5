"""Care-team flags (missed check-ins or sessions, a patient who blocked the bot) and the notices that tell the
patient's counselors, in each one's language, through the outbox."""
