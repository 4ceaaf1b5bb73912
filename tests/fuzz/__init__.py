"""The fuzzing harness: `engine.py` generates and classifies bad inputs; `test_fuzz.py` runs a fast
slice in the default test run and a long run behind `-m slow`; `scripts/fuzz.py` prints the counts."""
