"""The daily check-in: its questions, answers, prompts and the history they make."""
