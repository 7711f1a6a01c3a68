"""The boundary: finding the code under test and calling it through one guarded door."""
