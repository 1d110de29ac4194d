"""`ktorch.utils.get_file`: cache, file:// origins, hashes, extraction, offline errors."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile

import pytest

from ktorch.utils import file_utils, get_file


@pytest.fixture()
def source(tmp_path):
    path = tmp_path / "src" / "data.bin"
    path.parent.mkdir()
    path.write_bytes(b"ktorch" * 1000)
    return path


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_from_file_origin_and_reuse_cache_offline(tmp_path, source):
    cache = tmp_path / "cache"
    path = get_file("data.bin", origin=source.as_uri(), cache_dir=cache, file_hash=_sha256(source))
    assert path == os.path.join(cache, "datasets", "data.bin")
    assert open(path, "rb").read() == source.read_bytes()
    # The origin is gone (offline): the cached copy is used.
    source.unlink()
    again = get_file("data.bin", origin=source.as_uri(), cache_dir=cache)
    assert again == path


def test_default_cache_is_ktorch_home(tmp_path, source, monkeypatch):
    monkeypatch.setenv("KTORCH_HOME", str(tmp_path / "home"))
    path = get_file(origin=source.as_uri(), cache_subdir="models")
    assert path == os.path.join(tmp_path, "home", "models", "data.bin")


def test_offline_without_cache_is_a_clear_error(tmp_path):
    missing = (tmp_path / "nowhere.bin").as_uri()
    with pytest.raises(OSError, match="URL fetch failure.*No cached copy"):
        get_file("nowhere.bin", origin=missing, cache_dir=tmp_path / "cache")
    assert not os.listdir(tmp_path / "cache" / "datasets")


def test_hash_mismatch(tmp_path, source):
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="hash does not match"):
        get_file("data.bin", origin=source.as_uri(), cache_dir=cache, file_hash="0" * 64)
    assert not (cache / "datasets" / "data.bin").exists()
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    path = get_file("data.bin", origin=source.as_uri(), cache_dir=cache, md5_hash=md5)
    assert file_utils.validate_file(path, md5)


def test_stale_cached_file_is_downloaded_again(tmp_path, source, capsys):
    cache = tmp_path / "cache"
    cached = cache / "datasets" / "data.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"old")
    path = get_file("data.bin", origin=source.as_uri(), cache_dir=cache, file_hash=_sha256(source))
    assert open(path, "rb").read() == source.read_bytes()
    assert "downloading it again" in capsys.readouterr().out


def test_force_download(tmp_path, source):
    cache = tmp_path / "cache"
    get_file("data.bin", origin=source.as_uri(), cache_dir=cache)
    source.write_bytes(b"new content")
    path = get_file("data.bin", origin=source.as_uri(), cache_dir=cache, force_download=True)
    assert open(path, "rb").read() == b"new content"


def test_fname_must_not_be_a_path(tmp_path, source):
    with pytest.raises(ValueError, match="Paths are not accepted"):
        get_file("../evil.bin", origin=source.as_uri(), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="origin"):
        get_file("x.bin")


def _tar(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_extract_tar_and_zip(tmp_path):
    _tar(tmp_path / "pack.tar.gz", {"pack/a.txt": b"a", "pack/b/c.txt": b"c"})
    folder = get_file(
        "pack.tar.gz",
        origin=(tmp_path / "pack.tar.gz").as_uri(),
        extract=True,
        cache_dir=tmp_path / "c",
    )
    assert folder.endswith("pack_extracted")
    assert open(os.path.join(folder, "pack", "b", "c.txt"), "rb").read() == b"c"
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as archive:
        archive.writestr("inner/x.txt", "x")
    folder = get_file(origin=(tmp_path / "z.zip").as_uri(), extract=True, cache_dir=tmp_path / "c")
    assert open(os.path.join(folder, "inner", "x.txt")).read() == "x"


def test_archive_members_escaping_the_folder_are_refused(tmp_path):
    _tar(tmp_path / "evil.tar.gz", {"../evil.txt": b"owned"})
    with pytest.raises(ValueError, match="leaves the destination"):
        get_file(
            "evil.tar.gz",
            origin=(tmp_path / "evil.tar.gz").as_uri(),
            extract=True,
            cache_dir=tmp_path / "c",
        )
    assert not (tmp_path / "c" / "datasets" / "evil.txt").exists()
    assert not (tmp_path / "c" / "evil.txt").exists()
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("/abs/evil.txt", "x")
        archive.writestr("../../evil2.txt", "x")
    with pytest.raises(ValueError, match="leaves the destination"):
        file_utils.extract_archive(str(tmp_path / "evil.zip"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
