"""Downloads through helpers.files.fetch, against a local HTTP server on 127.0.0.1.

No test here touches the internet: the module-level URLs and checksums are
monkeypatched to files served from tmp_path.
"""
from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import threading
import zipfile
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

import helpers.data as data_module
import helpers.vectors as vectors_module
from conftest import entries, make_imdb_archive
from helpers.data import load_imdb, load_trec, read_imdb, read_trec
from helpers.files import DataError, sha256_file
from helpers.vectors import load_glove

PER_FOLDER = 5  # reviews per folder in the served archive


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from `directory`; /short/<name> announces more bytes than it sends."""

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/short/"):
            body = (Path(self.directory) / self.path[len("/short/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])  # then the connection closes: a cut-off download
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(root=root, url=f"http://127.0.0.1:{httpd.server_port}", requests=httpd.requests)
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def imdb_served(server, fixture_data_dir, monkeypatch):
    """A small IMDb archive on the server; IMDB_URL / IMDB_SHA256 point at it."""
    archive = make_imdb_archive(server.root / "aclImdb_v1.tar.gz", fixture_data_dir / "imdb" / "aclImdb",
                                per_folder=PER_FOLDER)
    monkeypatch.setattr(data_module, "IMDB_URL", f"{server.url}/aclImdb_v1.tar.gz")
    monkeypatch.setattr(data_module, "IMDB_SHA256", sha256_file(archive))
    monkeypatch.setattr(data_module, "IMDB_REVIEWS_PER_FOLDER", PER_FOLDER)
    return archive


def closed_port_url(path: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


# ---------------------------------------------------------------------------- IMDb

def test_imdb_download(imdb_served, server, tmp_cache):
    datasets = read_imdb(None, cache=tmp_cache)
    assert len(datasets["train"]) == len(datasets["test"]) == 2 * PER_FOLDER
    assert datasets["train"].labels.tolist() == [0] * PER_FOLDER + [1] * PER_FOLDER
    saved = tmp_cache / "downloads" / "aclImdb_v1.tar.gz"
    assert saved.is_file() and saved.read_bytes() == imdb_served.read_bytes()
    assert entries(tmp_cache / "downloads") == ["aclImdb_v1.tar.gz"]
    assert server.requests == ["/aclImdb_v1.tar.gz"]
    # the second read uses the verified file in the cache
    again = read_imdb(None, cache=tmp_cache)
    assert again["test"].texts == datasets["test"].texts
    assert len(server.requests) == 1


def test_imdb_download_uses_env_cache(imdb_served, tmp_cache):
    datasets = load_imdb(workers=1)  # no data dir, no explicit cache: SENTIMENT_CACHE_DIR
    assert len(datasets["train"].tokens) == 2 * PER_FOLDER
    assert (tmp_cache / "downloads" / "aclImdb_v1.tar.gz").is_file()
    assert len(entries(tmp_cache / "prepared")) == 1


def test_damaged_file_in_download_cache_is_fetched_again(imdb_served, server, tmp_cache):
    (tmp_cache / "downloads").mkdir(parents=True)
    (tmp_cache / "downloads" / "aclImdb_v1.tar.gz").write_bytes(b"half a file")
    assert len(read_imdb(None, cache=tmp_cache)["train"]) == 2 * PER_FOLDER
    assert server.requests == ["/aclImdb_v1.tar.gz"]
    assert sha256_file(tmp_cache / "downloads" / "aclImdb_v1.tar.gz") == sha256_file(imdb_served)


def test_bad_checksum(imdb_served, tmp_cache, monkeypatch):
    monkeypatch.setattr(data_module, "IMDB_SHA256", hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(DataError, match="checksum mismatch") as err:
        read_imdb(None, cache=tmp_cache)
    assert data_module.IMDB_URL in str(err.value)
    assert entries(tmp_cache / "downloads") == []


def test_connection_cut_short(imdb_served, server, tmp_cache, monkeypatch):
    monkeypatch.setattr(data_module, "IMDB_URL", f"{server.url}/short/aclImdb_v1.tar.gz")
    with pytest.raises(DataError, match="could not download") as err:
        load_imdb(cache=tmp_cache, workers=1)
    assert "/short/aclImdb_v1.tar.gz" in str(err.value) and "IncompleteRead" in str(err.value)
    assert server.requests == ["/short/aclImdb_v1.tar.gz"]
    assert entries(tmp_cache / "downloads") == [] and entries(tmp_cache / "prepared") == []


def test_truncated_file_with_the_full_files_checksum(imdb_served, server, tmp_cache, monkeypatch):
    content = imdb_served.read_bytes()
    (server.root / "cut.tar.gz").write_bytes(content[:len(content) * 2 // 3])
    monkeypatch.setattr(data_module, "IMDB_URL", f"{server.url}/cut.tar.gz")
    with pytest.raises(DataError, match="checksum mismatch.*cut.tar.gz"):
        read_imdb(None, cache=tmp_cache)
    assert entries(tmp_cache / "downloads") == []


def test_missing_file_on_the_server(imdb_served, server, tmp_cache, monkeypatch):
    monkeypatch.setattr(data_module, "IMDB_URL", f"{server.url}/nothing-here.tar.gz")
    with pytest.raises(DataError, match="could not download .*nothing-here.tar.gz.*404"):
        read_imdb(None, cache=tmp_cache)
    assert entries(tmp_cache / "downloads") == []


def test_unreachable_url_tells_user_to_set_data_dir(tmp_cache, monkeypatch):
    url = closed_port_url("aclImdb_v1.tar.gz")
    monkeypatch.setattr(data_module, "IMDB_URL", url)
    with pytest.raises(DataError, match="set SENTIMENT_DATA_DIR") as err:
        read_imdb(None, cache=tmp_cache)
    assert url in str(err.value) and "could not download" in str(err.value)
    assert entries(tmp_cache / "downloads") == []


# ---------------------------------------------------------------------------- TREC

@pytest.fixture
def trec_served(server, fixture_data_dir, monkeypatch):
    files = {}
    for split, (filename, _, _) in data_module.TREC_FILES.items():
        served = server.root / filename
        shutil.copy(fixture_data_dir / "trec" / filename, served)
        files[split] = (filename, f"{server.url}/{filename}", sha256_file(served))
    monkeypatch.setattr(data_module, "TREC_FILES", files)
    return files


def test_trec_download(trec_served, server, tmp_cache):
    trec = read_trec(None, cache=tmp_cache)
    assert (len(trec["train"]), len(trec["test"])) == (600, 150)
    assert len(trec["train"].label_names) == 6
    assert entries(tmp_cache / "downloads") == ["TREC_10.label", "train_5500.label"]
    fine = load_trec(fine=True, cache=tmp_cache, workers=1)
    assert len(fine["train"].label_names) > 6 and len(fine["test"].tokens) == 150
    assert sorted(server.requests) == ["/TREC_10.label", "/train_5500.label"]


def test_trec_download_bad_checksum(trec_served, tmp_cache, monkeypatch):
    filename, url, _ = trec_served["test"]
    monkeypatch.setitem(data_module.TREC_FILES, "test", (filename, url, "0" * 64))
    with pytest.raises(DataError, match="checksum mismatch .*TREC_10.label"):
        read_trec(None, cache=tmp_cache)
    assert entries(tmp_cache / "downloads") == ["train_5500.label"]


# ---------------------------------------------------------------------------- GloVe

@pytest.fixture
def glove_served(server, fixture_data_dir, monkeypatch):
    import gzip

    with gzip.open(fixture_data_dir / "glove" / "glove.6B.50d.txt.gz", "rb") as handle:
        raw = handle.read()
    with zipfile.ZipFile(server.root / "glove.6B.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("glove.6B.50d.txt", raw)
    monkeypatch.setattr(vectors_module, "GLOVE_6B_URL", f"{server.url}/glove.6B.zip")
    monkeypatch.setattr(vectors_module, "GLOVE_MEMBER_SHA256", {"glove.6B.50d.txt": hashlib.sha256(raw).hexdigest()})
    return raw


def test_glove_download(glove_served, server, tmp_cache):
    vectors = load_glove("glove.6B.50d", cache=tmp_cache)
    assert vectors.dim == 50 and len(vectors) == glove_served.count(b"\n") and "the" in vectors
    assert entries(tmp_cache / "downloads") == ["glove.6B.zip"]
    assert len(entries(tmp_cache / "vectors")) == 1
    assert load_glove("glove.6B.50d", cache=tmp_cache).itos == vectors.itos
    assert server.requests == ["/glove.6B.zip"]


def test_glove_download_member_checksum(glove_served, tmp_cache, monkeypatch):
    monkeypatch.setitem(vectors_module.GLOVE_MEMBER_SHA256, "glove.6B.50d.txt", "0" * 64)
    with pytest.raises(DataError, match="glove.6B.zip:glove.6B.50d.txt does not match its known sha256"):
        load_glove("glove.6B.50d", cache=tmp_cache)
    assert entries(tmp_cache / "vectors") == []


def test_glove_download_unreachable(tmp_cache, monkeypatch):
    monkeypatch.setattr(vectors_module, "GLOVE_6B_URL", closed_port_url("glove.6B.zip"))
    with pytest.raises(DataError, match="SENTIMENT_DATA_DIR"):
        load_glove("glove.6B.50d", cache=tmp_cache)
