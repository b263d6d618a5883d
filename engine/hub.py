"""``engine.hub``: pretrained weights by URL, as ``torch.hub.load_state_dict_from_url``.

A checkpoint is downloaded once into ``<hub dir>/checkpoints`` (``$TORCH_HOME/hub``, so PyTorch's
cache is shared) and read with ``engine.load``, which reads PyTorch's own ``.pt``/``.pth`` files
through its weights-only unpickler. Where there is no network, the error says where to put the
file by hand. Loading code from GitHub repositories (``torch.hub.load``) is not offered: a hub
repository is arbitrary Python.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from urllib.parse import urlparse

HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_hub_dir: str | None = None

__all__ = ["download_url_to_file", "get_dir", "load_state_dict_from_url", "set_dir"]


def get_dir() -> str:
    """The hub cache folder: ``set_dir``'s, else ``$TORCH_HOME/hub`` (``$XDG_CACHE_HOME/torch``, ``~/.cache``)."""
    if _hub_dir is not None:
        return _hub_dir
    home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"),
                                                                   "torch")))
    return os.path.join(home, "hub")


def set_dir(d) -> None:
    """Use ``d`` as the hub cache folder from now on."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst, hash_prefix: str | None = None, progress: bool = True) -> None:
    """Download ``url`` to ``dst`` (through a temporary file, renamed when complete and verified).

    Raises:
        RuntimeError: the download failed (no network, a bad URL) or its SHA-256 does not start
            with ``hash_prefix``; ``dst`` is not created.
    """
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise ValueError(f"engine.hub downloads http://, https:// and file:// URLs only, got {url!r}")
    dst = os.path.expanduser(os.fspath(dst))
    folder = os.path.dirname(os.path.abspath(dst))
    digest = hashlib.sha256()
    fd, temp = tempfile.mkstemp(prefix=".download.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "kiln-engine"})  # noqa: S310 - scheme checked above
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - scheme checked above
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise RuntimeError(f"could not download {url}: {reason}. Without network access, download it "
                                   f"elsewhere and place it at {dst}") from None
        if hash_prefix is not None and not digest.hexdigest().startswith(hash_prefix):
            raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "{digest.hexdigest()}")')
        shutil.move(temp, dst)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def load_state_dict_from_url(url: str, model_dir=None, map_location=None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None, weights_only: bool | None = None):
    """Load the checkpoint at ``url``, downloading it into the hub cache the first time.

    Args:
        url: where the checkpoint is (``https://``, ``file://``).
        model_dir: the cache folder (default ``<get_dir()>/checkpoints``).
        map_location: as ``engine.load``. check_hash: the file name's ``-<sha256 prefix>.`` must match.
        file_name: the cached file's name (default: the URL's).
        weights_only: ``False`` unpickles the file fully (only for a source you trust); by default the
            download is read weights-only, as ``engine.load`` reads (torch's hub defaults to ``False``).

    Example:
        >>> state = engine.hub.load_state_dict_from_url(  # doctest: +SKIP
        ...     "https://download.pytorch.org/models/resnet18-f37072fd.pth", map_location="cpu")
    """
    from engine.serialization import load

    if model_dir is None:
        model_dir = os.path.join(get_dir(), "checkpoints")
    os.makedirs(model_dir, exist_ok=True)
    filename = file_name if file_name is not None else os.path.basename(urlparse(url).path)
    if not filename:
        raise ValueError(f"can't name a cache file for {url!r}: pass file_name=")
    cached_file = os.path.join(model_dir, filename)
    if not os.path.exists(cached_file):
        sys.stderr.write(f'Downloading: "{url}" to {cached_file}\n')
        match = HASH_REGEX.search(filename) if check_hash else None
        download_url_to_file(url, cached_file, match.group(1) if match else None, progress=progress)
    return load(cached_file, map_location=map_location, weights_only=weights_only is not False)
