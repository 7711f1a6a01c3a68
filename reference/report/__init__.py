"""The reporters: the run's outcome as terminal text, JSON, JUnit XML, GitHub annotations and
HTML. They render outcome records and import nothing of the run engine."""
