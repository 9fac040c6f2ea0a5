"""Program sessions: series, reminders, attendance and calendar import."""
