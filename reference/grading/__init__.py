"""Grading: a rubric's points for an implementation (Gradescope's results), and a class's
submissions graded into a gradebook."""
