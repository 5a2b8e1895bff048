"""The test suite, a package so that test files may share a basename in different folders
(tests/unit/build/test_build.py beside tests/integration/build/test_build.py) and import their helper
modules by name (`from tests.integration.examples import ...`). pytest puts the repository root on sys.path."""
