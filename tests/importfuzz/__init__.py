"""Property-based checks of the PyTorch importer: random small modules, imported, interpreted and
compared with torch (`generator.py`); the fast slice is `tests/test_import_properties.py`, long
campaigns `scripts/import_fuzz.py`."""
