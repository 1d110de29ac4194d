"""`get_file`: download a file once, cache it under `$KTORCH_HOME`, check its hash, extract it."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from ktorch import config

_CHUNK = 1 << 16


def resolve_hasher(algorithm: str, file_hash: str | None = None) -> str:
    """The hash algorithm to use: `"sha256"`/`"md5"`, or guessed from the hash's length."""
    if algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(
            "Invalid value for argument `hash_algorithm`. Expected 'auto', 'sha256' or 'md5'. "
            f"Received: hash_algorithm={algorithm!r}"
        )
    if algorithm == "sha256" or (algorithm == "auto" and file_hash and len(file_hash) == 64):
        return "sha256"
    if algorithm == "auto" and file_hash is not None and len(file_hash) != 32:
        raise ValueError(
            "Cannot tell the hash algorithm from `file_hash`: expected 64 hex digits (sha256) "
            f"or 32 (md5). Received: file_hash={file_hash!r}"
        )
    return "md5" if algorithm in ("md5", "auto") else "sha256"


def hash_file(fpath: str, algorithm: str = "sha256", chunk_size: int = _CHUNK) -> str:
    """The hex digest of the file at `fpath` with `algorithm` (`"sha256"` or `"md5"`)."""
    hasher = hashlib.sha256() if algorithm in ("sha256", "auto") else hashlib.md5()
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath: str, file_hash: str, algorithm: str = "auto") -> bool:
    """Whether the file at `fpath` has the hash `file_hash`."""
    algorithm = resolve_hasher(algorithm, file_hash)
    return hash_file(fpath, algorithm) == str(file_hash).lower()


def _inside(root: str, member: str) -> bool:
    target = os.path.realpath(os.path.join(root, member))
    return os.path.commonpath([os.path.realpath(root), target]) == os.path.realpath(root)


def extract_archive(file_path: str, path: str = ".", archive_format="auto") -> bool:
    """Extracts a tar or zip archive into `path`, refusing members that would escape it.

    Args:
        file_path: the archive.
        path: the destination folder.
        archive_format: `"auto"`, `"tar"`, `"zip"`, a list of those, or None (no extraction).

    Returns:
        True if the file was one of the formats and was extracted, False otherwise.

    Raises:
        ValueError: a member's path is absolute or leaves `path` (`../x`), or is a link.
    """
    if archive_format is None:
        return False
    if archive_format == "auto":
        archive_format = ["tar", "zip"]
    if isinstance(archive_format, str):
        archive_format = [archive_format]
    for kind in archive_format:
        if kind == "tar" and tarfile.is_tarfile(file_path):
            with tarfile.open(file_path) as archive:
                members = archive.getmembers()
                for member in members:
                    if not _inside(path, member.name) or member.issym() or member.islnk():
                        raise ValueError(
                            f"Refusing to extract {file_path}: member {member.name!r} is a link "
                            "or leaves the destination folder."
                        )
                # The "data" filter (when this Python has it) also drops unsafe modes.
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                _extract_all(functools.partial(archive.extractall, members=members, **safe), path)
            return True
        if kind == "zip" and zipfile.is_zipfile(file_path):
            with zipfile.ZipFile(file_path) as archive:
                for name in archive.namelist():
                    if not _inside(path, name):
                        raise ValueError(
                            f"Refusing to extract {file_path}: member {name!r} leaves the "
                            "destination folder."
                        )
                _extract_all(archive.extractall, path)
            return True
    return False


def _extract_all(extract, path: str) -> None:
    # Extract beside the destination, then move into place: a failure leaves no half folder.
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=parent)
    try:
        extract(tmp)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _download(origin: str, target: str) -> None:
    from tqdm.auto import tqdm

    tmp_fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", dir=os.path.dirname(target)
    )
    try:
        with os.fdopen(tmp_fd, "wb") as out, urllib.request.urlopen(origin) as response:
            total = response.headers.get("Content-Length")
            with tqdm(
                total=int(total) if total else None,
                unit="B",
                unit_scale=True,
                desc=os.path.basename(target),
                disable=None,
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def get_file(
    fname: str | None = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format="auto",
    cache_dir: str | None = None,
    force_download: bool = False,
) -> str:
    """Downloads a file from `origin` unless it is already cached, and returns its local path.

    Files are cached in `cache_dir/cache_subdir` (by default `$KTORCH_HOME/datasets/`, the
    ktorch home being `~/.ktorch`), so a second call, offline too, uses the cached copy. With a
    `file_hash`, a cached file whose hash differs is downloaded again and a download whose hash
    differs is rejected. `file://` origins work like any URL.

    Args:
        fname: the cached file's name (default: the origin's last path segment). Not a path.
        origin: the URL to download from.
        untar: deprecated, same as `extract=True` with `archive_format="tar"`.
        md5_hash: deprecated, an md5 `file_hash`.
        file_hash: the expected sha256 (or md5) hex digest of the file.
        cache_subdir: the subfolder of the cache (`"datasets"`, `"models"`, ...).
        hash_algorithm: `"auto"`, `"sha256"` or `"md5"`.
        extract: extract the archive (tar, tar.gz, tar.bz2, zip) and return the folder.
        archive_format: `"auto"`, `"tar"`, `"zip"` or a list of those.
        cache_dir: the cache root instead of the ktorch home.
        force_download: download even if a cached copy exists.

    Returns:
        The path of the file, or of the extracted folder with `extract=True`.

    Raises:
        ValueError: no `origin`, a path as `fname`, or a hash mismatch after download.
        OSError: the download failed (offline, for example) and no cached copy exists.

    Example:
        ```python
        path = ktorch.utils.get_file(
            "digits.npz", origin="https://example.com/digits.npz", file_hash="…sha256…"
        )
        ```
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    base = os.path.expanduser(cache_dir) if cache_dir is not None else config.ktorch_home()
    if cache_dir is not None and not os.access(base, os.W_OK) and os.path.exists(base):
        base = os.path.join(tempfile.gettempdir(), ".ktorch")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)

    provided = fname
    fname = os.fspath(fname) if fname else ""
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(
                f"Can't parse the file name from the origin provided: '{origin}'. Please "
                "specify the `fname` argument."
            )
    elif os.sep in fname or (os.altsep and os.altsep in fname) or fname in (".", ".."):
        raise ValueError(
            "Paths are not accepted as the `fname` argument: to choose the file's folder, use "
            f"`cache_dir` and `cache_subdir`. Received: fname={fname}"
        )

    extracting = extract or untar
    if extracting:
        stem = fname[: fname.find(".")] if "." in fname else fname
        if provided and "." in fname:
            target, folder = (
                os.path.join(datadir, fname),
                os.path.join(datadir, f"{stem}_extracted"),
            )
        else:
            target, folder = os.path.join(datadir, f"{stem}_archive"), os.path.join(datadir, stem)
    else:
        target = os.path.join(datadir, fname)

    download = force_download or not os.path.exists(target)
    if (
        not download
        and file_hash is not None
        and not validate_file(target, file_hash, hash_algorithm)
    ):
        algorithm = resolve_hasher(hash_algorithm, file_hash)
        print(
            f"A local file was found at {target}, but its {algorithm} hash does not match "
            f"{file_hash}: downloading it again."
        )
        download = True
    if download:
        try:
            _download(origin, target)
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise OSError(
                f"URL fetch failure on {origin}: {reason}. No cached copy of {fname} exists in "
                f"{datadir}: connect to the network or place the file there."
            ) from error
        if file_hash is not None and not validate_file(target, file_hash, hash_algorithm):
            os.remove(target)
            raise ValueError(
                "Incomplete or corrupted file detected. The "
                f"{resolve_hasher(hash_algorithm, file_hash)} file hash does not match the "
                f"provided value of {file_hash}."
            )
    if extracting:
        if untar:
            archive_format = "tar"
        if download or not os.path.isdir(folder):
            if not extract_archive(target, folder, archive_format):
                raise ValueError(
                    f"Could not extract {target}: it is not a {archive_format} archive."
                )
        return folder
    return target
