"""The input-kind registry (snakebatch.kinds.registry): kind names to lazily imported classes."""

import pytest

from snakebatch.kinds import InputKind, get_kind, known_kinds
from snakebatch.kinds.files.kind import FileKind
from snakebatch.kinds.tables.kind import TableKind

FILES = get_kind("file")
TABLES = get_kind("tabular")


def test_registry_names_the_kinds_and_refuses_an_unknown_one():
    assert known_kinds() == ("file", "tabular")
    assert isinstance(FILES, FileKind) and isinstance(TABLES, TableKind)
    assert get_kind("file") is FILES
    assert isinstance(FILES, InputKind)
    with pytest.raises(ValueError) as info:
        get_kind("image")
    assert str(info.value) == "unknown input kind 'image'; known kinds: file, tabular"
