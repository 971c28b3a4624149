"""The package as installed: the Python layer under test is the one in the source tree, the public
names exist, and help() has something to say about each."""

from __future__ import annotations

import inspect
import pathlib

import sparsedisk
from conftest import SOURCE


def test_installed_package_is_the_source():
    """``pip install ./python`` copies ``sparsedisk/__init__.py``; a stale install would test old
    code. Reinstall (``cd python && ../target/pyenv/bin/pip install .``) when this fails."""
    installed = pathlib.Path(sparsedisk.__file__)
    source = SOURCE / "sparsedisk" / "__init__.py"
    assert installed.read_text() == source.read_text(), (
        f"{installed} differs from {source}: reinstall the package before running the suite"
    )


def test_public_names_and_docstrings():
    for name in sparsedisk.__all__:
        obj = getattr(sparsedisk, name)
        assert inspect.getdoc(obj), f"sparsedisk.{name} has no docstring"
    for name, member in inspect.getmembers(sparsedisk.Matrix):
        if not name.startswith("_") and (callable(member) or isinstance(member, property)):
            assert inspect.getdoc(member), f"Matrix.{name} has no docstring"


def test_type_stubs_are_installed():
    package = pathlib.Path(sparsedisk.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_native.pyi").exists()
