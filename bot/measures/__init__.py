"""Validated questionnaires (PHQ-9, GAD-7, BAM): schedules, answers saved one by one, scores, flags."""
