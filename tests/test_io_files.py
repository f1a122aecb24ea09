"""nyc911lib.io.files: every file the project writes beside its tables is written whole or not at all."""

from __future__ import annotations

import stat

import pytest

from nyc911lib.io.files import atomic_file, copy_atomic, write_atomic


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("data", ["naïve line\r\nnext\n", b"\x00\x89PNG\r\n"], ids=["text", "bytes"])
def test_write_atomic_writes_exactly_the_data_shared_and_leaves_nothing_else(tmp_path, data):
    target = tmp_path / "new" / "folder" / "out.html"
    assert write_atomic(target, data) == target
    expected = data if isinstance(data, bytes) else data.encode("utf-8")  # no newline translation
    assert target.read_bytes() == expected
    assert _mode(target) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.html"]


def test_while_writing_only_a_hidden_part_file_exists_and_an_error_keeps_the_old_file(tmp_path):
    target = tmp_path / "export.csv"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as handle:
        handle.write("half of the new")
        [part] = [p for p in tmp_path.iterdir() if p != target]
        assert part.name.startswith(".export.csv.") and part.name.endswith(".part")  # never `*.csv`
        raise KeyboardInterrupt  # a kill, as far as Python sees one
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]


def test_an_error_before_the_first_write_creates_no_target(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(ValueError, match="not strict JSON"), atomic_file(target):
        raise ValueError("not strict JSON")
    assert list(tmp_path.iterdir()) == []


def test_copy_atomic_copies_the_bytes_and_replaces_an_existing_target(tmp_path):
    source = tmp_path / "source.csv"
    source.write_bytes(bytes(range(256)) * 5000)  # over one copy buffer
    target = tmp_path / "landing" / "x.csv"
    target.parent.mkdir()
    target.write_bytes(b"stale")
    assert copy_atomic(source, target) == target
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.csv"]
