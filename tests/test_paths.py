import pytest

from batchlab.paths import safe_name


def test_safe_names_stay_and_hostile_names_are_slugged():
    assert safe_name("digits-bs_lr.v2") == "digits-bs_lr.v2"
    for hostile in ("../../escape", "a/b", "..", ".hidden", "-rf", "x" * 300, "é ü/\\:*?", ""):
        s = safe_name(hostile)
        assert 0 < len(s) <= 64 and "/" not in s and "\\" not in s
        assert not s.startswith((".", "-")) and s not in (".", "..")
    assert safe_name("a/b") != safe_name("a-b")  # replaced characters do not collide
    assert safe_name("x" * 300) != safe_name("x" * 299)
    assert safe_name("../../escape").startswith("escape-")


def test_a_file_written_whole_replaces_the_old_one_only_when_the_block_ends(tmp_path):
    from batchlab.paths import written_whole

    path = tmp_path / "f.json"
    path.write_text("old")
    with written_whole(path) as tmp:
        tmp.write_text("new, half")
        assert path.read_text() == "old" and tmp.parent == tmp_path  # beside it: one rename
    assert path.read_text() == "new, half"
    with pytest.raises(KeyboardInterrupt), written_whole(path) as tmp:
        tmp.write_text("cut off")
        raise KeyboardInterrupt
    assert path.read_text() == "new, half" and [p.name for p in tmp_path.iterdir()] == ["f.json"]
