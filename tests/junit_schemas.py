"""The JUnit file against every schema it must meet (``reference.report.junit.SCHEMAS``:
the project's own, Jenkins' junit-4 and the xUnit plugin's junit-10), for the tests that
write one."""

import functools

import pytest

from reference.report import junit


@functools.cache
def _loaded():
    xmlschema = pytest.importorskip("xmlschema", reason="pip install -e '.[test]' brings it")
    return {name: xmlschema.XMLSchema(str(path)) for name, path in junit.SCHEMAS.items()}


def schemas():
    """Each schema by name, read by xmlschema (in the test extra)."""
    return _loaded()


def validate(source):
    """Raise, naming the schema, unless ``source`` (a path or an XML string) meets all."""
    for name, xsd in _loaded().items():
        errors = list(xsd.iter_errors(str(source)))
        assert not errors, f"{name}: {errors[0]}"


def rejected_by(source):
    """The names of the schemas ``source`` fails."""
    return sorted(name for name, xsd in _loaded().items() if not xsd.is_valid(str(source)))
