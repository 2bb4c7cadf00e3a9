"""kseg.weights: download, verify and cache against a local HTTP server."""

import argparse
import collections
import functools
import hashlib
import http.server
import os
import socket
import threading

import pytest

from kseg import weights
from kseg.cli import weights as cli_weights

GOOD = os.urandom(50_000)
GOOD_MD5 = hashlib.md5(GOOD).hexdigest()


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the directory; ``/truncated.h5`` promises more bytes than it sends."""

    def do_GET(self):
        self.server.hits[self.path] += 1
        if self.path == "/truncated.h5":
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[:1000])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local server over a folder holding ``good.h5``; yields its base URL and hit counter."""
    root = tmp_path_factory.mktemp("served")
    (root / "good.h5").write_bytes(GOOD)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    httpd.hits = collections.Counter()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.hits
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def entry(server, monkeypatch):
    """Register a test entry and point KSEG_WEIGHTS_URL_BASE at the server."""
    base, hits = server
    hits.clear()
    monkeypatch.setenv(weights.URL_BASE_ENV, base)

    def make(fname="good.h5", size=50_000, file_hash=GOOD_MD5):
        item = weights.WeightsFile(name="tiny", url="https://example.invalid/" + fname,
                                   fname=fname, size=size, file_hash=file_hash)
        monkeypatch.setitem(weights.REGISTRY, "tiny", item)
        return item

    return make


def leftovers(cache_dir):
    models = cache_dir / "models"
    return sorted(os.listdir(models)) if models.exists() else []


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_get_downloads_verifies_and_caches(entry, server, tmp_path, algorithm):
    entry(file_hash=hashlib.new(algorithm, GOOD).hexdigest())
    path = weights.get("tiny", cache_dir=tmp_path)
    assert path == str(tmp_path / "models" / "good.h5")
    assert open(path, "rb").read() == GOOD
    assert weights.get("tiny", cache_dir=tmp_path) == path
    assert server[1]["/good.h5"] == 1  # the second call used the cache
    assert leftovers(tmp_path) == ["good.h5"]


def test_force_and_bad_cached_copy_download_again(entry, server, tmp_path):
    entry()
    target = tmp_path / "models" / "good.h5"
    target.parent.mkdir()
    target.write_bytes(b"half a file")
    assert weights.get("tiny", cache_dir=tmp_path) == str(target)
    assert target.read_bytes() == GOOD
    weights.get("tiny", cache_dir=tmp_path, force=True)
    assert server[1]["/good.h5"] == 2 and leftovers(tmp_path) == ["good.h5"]


def test_wrong_checksum_retries_once_then_raises(entry, server, tmp_path):
    entry(file_hash="0" * 32)
    with pytest.raises(weights.WeightsError, match="failed twice.*checksum") as info:
        weights.get("tiny", cache_dir=tmp_path)
    assert str(tmp_path / "models" / "good.h5") in str(info.value)
    assert server[1]["/good.h5"] == 2
    assert leftovers(tmp_path) == []


def test_wrong_size_without_checksum_raises(entry, tmp_path):
    entry(size=len(GOOD) + 1, file_hash=None)
    with pytest.raises(weights.WeightsError, match="size 50000 bytes, expected 50001"):
        weights.get("tiny", cache_dir=tmp_path)
    assert leftovers(tmp_path) == []


def test_http_404_is_a_clear_error(entry, server, tmp_path):
    entry(fname="missing.h5")
    with pytest.raises(weights.WeightsError, match="HTTP 404") as info:
        weights.get("tiny", cache_dir=tmp_path)
    assert not isinstance(info.value, weights.OfflineError)
    assert f"{server[0]}/missing.h5" in str(info.value)
    assert server[1]["/missing.h5"] == 1 and leftovers(tmp_path) == []


def test_truncated_transfer_leaves_no_partial_file(entry, server, tmp_path):
    entry(fname="truncated.h5")
    with pytest.raises(weights.WeightsError, match="incomplete download"):
        weights.get("tiny", cache_dir=tmp_path)
    assert server[1]["/truncated.h5"] == 2 and leftovers(tmp_path) == []


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/good.h5"


def test_offline_message_names_url_and_manual_path(entry, tmp_path):
    entry()
    url = closed_port_url()
    with pytest.raises(weights.OfflineError) as info:
        weights.get("tiny", cache_dir=tmp_path, url=url)
    message = str(info.value)
    assert "offline" in message and url in message
    assert str(tmp_path / "models" / "good.h5") in message
    assert leftovers(tmp_path) == []


def test_registry_and_origin(monkeypatch):
    coco = weights.REGISTRY["mask_rcnn_coco"]
    assert coco.size == 257557808 and len(coco.classes) == 81 and coco.classes[0] == "BG"
    assert weights.REGISTRY["resnet50_imagenet"].hash_algorithm == "md5"
    assert coco.hash_algorithm == "sha256"
    monkeypatch.delenv(weights.URL_BASE_ENV, raising=False)
    assert weights.origin_url("mask_rcnn_coco") == coco.url
    monkeypatch.setenv(weights.URL_BASE_ENV, "http://mirror/w/")
    assert weights.origin_url("mask_rcnn_coco") == "http://mirror/w/mask_rcnn_coco.h5"
    with pytest.raises(KeyError, match="known: .*mask_rcnn_coco"):
        weights.get("nope")


def parse(*argv):
    parser = cli_weights.add_arguments(argparse.ArgumentParser(prog="kseg weights"))
    return parser.parse_args(argv)


def test_cli_list_and_download(entry, tmp_path, capsys):
    entry()
    assert cli_weights.run(parse("list", "--cache-dir", str(tmp_path))) == 0
    out = capsys.readouterr().out
    assert "mask_rcnn_coco" in out and "81" in out and "vgg16_imagenet" in out
    assert cli_weights.run(parse("download", "tiny", "--cache-dir", str(tmp_path))) == 0
    assert capsys.readouterr().out.strip().endswith(str(tmp_path / "models" / "good.h5"))
    code = cli_weights.run(parse("download", "tiny", "--cache-dir", str(tmp_path), "--force",
                                 "--url", closed_port_url()))
    assert code == 1 and "offline" in capsys.readouterr().out


def test_resnet50_never_touches_keras_own_resnet50_file(entry, server, tmp_path, monkeypatch):
    """keras.applications caches its (different) ResNet50 weights as
    resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5; kseg's file has its own name, so
    both stay, and a verified Matterport-era copy under that name is used, not deleted."""
    resnet = weights.REGISTRY["resnet50_imagenet"]
    keras_name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert resnet.fname != keras_name and keras_name in resnet.aliases
    assert weights.origin_url("resnet50_imagenet").endswith("/" + keras_name)  # mirror path
    local = weights.WeightsFile(name="resnet50_imagenet", url=f"{server[0]}/good.h5",
                                fname=resnet.fname, aliases=resnet.aliases, file_hash=GOOD_MD5)
    monkeypatch.setitem(weights.REGISTRY, "resnet50_imagenet", local)
    monkeypatch.delenv(weights.URL_BASE_ENV, raising=False)
    models = tmp_path / "models"
    models.mkdir()
    (models / keras_name).write_bytes(b"keras.applications' own resnet50 weights")
    path = weights.get("resnet50_imagenet", cache_dir=tmp_path)
    assert path == str(models / resnet.fname) and open(path, "rb").read() == GOOD
    assert (models / keras_name).read_bytes() == b"keras.applications' own resnet50 weights"
    assert sorted(os.listdir(models)) == sorted([keras_name, resnet.fname])
    (models / resnet.fname).unlink()
    (models / keras_name).write_bytes(GOOD)  # the same bytes cached by Keras 2 / Matterport
    assert weights.get("resnet50_imagenet", cache_dir=tmp_path) == str(models / keras_name)
    assert server[1]["/good.h5"] == 1
