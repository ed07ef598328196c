"""What a run said: the console reporter, status of every target, CI reports, JUnit, coverage."""
