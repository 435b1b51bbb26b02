"""UCI HAR: parsing every accepted form, verification, caching, download over local HTTP."""

import hashlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from larnn.data.uci_har import (
    CACHE_NAME,
    CHANNELS,
    CLASS_NAMES,
    ENV_VAR,
    LAYOUT_DIR,
    UciHarSpec,
    download_uci_har,
    find_uci_har,
    load_uci_har,
    uci_har_available,
    verify_uci_har,
)
from larnn.errors import DataError, DownloadError

# A tiny copy: 12 train rows (subjects 1 and 3), 6 test rows (subject 2), 2 resp. 1 per label.
SPEC = UciHarSpec(
    train_counts=(2,) * 6,
    test_counts=(1,) * 6,
    train_subjects=frozenset({1, 3}),
    test_subjects=frozenset({2}),
)
LABELS = {"train": np.tile(np.arange(1, 7), 2), "test": np.arange(1, 7)}
SUBJECTS = {"train": np.repeat([1, 3], 6), "test": np.full(6, 2)}


def _lines(rows: list[str]) -> bytes:
    return "".join(f"{r}\r\n" for r in rows).encode()


def layout_files(seed: int = 0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The official text layout as {relative path: bytes}, and the signals it holds."""
    rng = np.random.default_rng(seed)
    files, signals = {}, {}
    for split, y in LABELS.items():
        X = rng.normal(0.0, 0.5, size=(len(y), 128, len(CHANNELS)))  # (N, T, C)
        signals[split] = X
        files[f"{split}/y_{split}.txt"] = _lines([str(v) for v in y])
        files[f"{split}/subject_{split}.txt"] = _lines([str(v) for v in SUBJECTS[split]])
        for c, channel in enumerate(CHANNELS):
            rows = ["".join(f"{v:16.7e}" for v in row) for row in X[:, :, c]]
            files[f"{split}/Inertial Signals/{channel}_{split}.txt"] = _lines(rows)
    return files, signals


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / LAYOUT_DIR / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def layout_zip(files: dict[str, bytes]) -> bytes:
    return zip_bytes({f"{LAYOUT_DIR}/{rel}": data for rel, data in files.items()})


def uci_download_zip(files: dict[str, bytes]) -> bytes:
    """The UCI download form: a zip holding 'UCI HAR Dataset.zip' (and macOS debris)."""
    inner = layout_zip(files)
    return zip_bytes({"__MACOSX/._UCI HAR Dataset.zip": b"junk", f"{LAYOUT_DIR}.zip": inner})


@pytest.fixture(autouse=True)
def isolated_lookup(monkeypatch, tmp_path):
    """No $LARNN_DATA_DIR and an empty per-user cache, so lookups see only the test's files."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))


def assert_matches(train, test, signals):
    for ds, split in ((train, "train"), (test, "test")):
        assert ds.X.dtype == np.float32 and ds.X.shape == signals[split].shape
        np.testing.assert_allclose(ds.X, signals[split], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(ds.y, LABELS[split] - 1)
        np.testing.assert_array_equal(ds.groups, SUBJECTS[split])
        assert ds.channel_names == CHANNELS and ds.class_names == CLASS_NAMES


@pytest.mark.parametrize("form", ["folder", "zip", "nested_zip"])
def test_each_form_loads_and_is_cached(tmp_path, form):
    files, signals = layout_files()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if form == "folder":
        write_folder(data_dir, files)
    elif form == "zip":
        (data_dir / f"{LAYOUT_DIR}.zip").write_bytes(layout_zip(files))
    else:
        (data_dir / "human+activity+recognition+using+smartphones.zip").write_bytes(
            uci_download_zip(files)
        )
    assert uci_har_available(data_dir)
    train, test = load_uci_har(data_dir, SPEC)
    assert_matches(train, test, signals)
    assert find_uci_har(data_dir) == data_dir / CACHE_NAME
    assert not list(data_dir.glob("*.part"))


def test_cached_npz_reloads_without_the_source(tmp_path):
    files, signals = layout_files()
    write_folder(tmp_path, files)
    first = load_uci_har(tmp_path, SPEC)
    for path in sorted((tmp_path / LAYOUT_DIR).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    second = load_uci_har(tmp_path, SPEC)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)
        np.testing.assert_array_equal(a.groups, b.groups)
    assert_matches(*second, signals)


def test_folder_that_is_the_layout_root(tmp_path):
    files, signals = layout_files()
    write_folder(tmp_path, files)
    root = tmp_path / LAYOUT_DIR
    assert find_uci_har(root) == root
    assert_matches(*load_uci_har(root, SPEC), signals)


def test_corrupt_zip_is_a_data_error(tmp_path):
    (tmp_path / "uci_har.zip").write_bytes(b"PK\x03\x04 this is not really a zip" * 10)
    with pytest.raises(DataError, match="not a readable zip"):
        load_uci_har(tmp_path, SPEC)


def test_zip_without_the_layout(tmp_path):
    (tmp_path / "uci_har.zip").write_bytes(zip_bytes({"readme.txt": b"hello"}))
    with pytest.raises(DataError, match="does not contain"):
        load_uci_har(tmp_path, SPEC)


def test_row_count_mismatch_between_files(tmp_path):
    files, _ = layout_files()
    files["train/y_train.txt"] = _lines([str(v) for v in LABELS["train"][:-1]])
    write_folder(tmp_path, files)
    with pytest.raises(DataError, match="y_train.txt has 11 rows, but the train signals have 12"):
        load_uci_har(tmp_path, SPEC)


def test_row_count_that_differs_from_the_spec(tmp_path):
    files, _ = layout_files()
    write_folder(tmp_path, files)
    spec = UciHarSpec(
        train_counts=(3, 2, 2, 2, 2, 2),
        test_counts=(1,) * 6,
        train_subjects=SPEC.train_subjects,
        test_subjects=SPEC.test_subjects,
    )
    with pytest.raises(DataError, match=r"train: X has shape \(12, 128, 9\), expected \(13"):
        load_uci_har(tmp_path, spec)
    assert not (tmp_path / CACHE_NAME).exists()


def test_bad_cells_name_the_file_and_row(tmp_path):
    files, _ = layout_files()
    files["test/subject_test.txt"] = _lines(["2", "2", "two", "2", "2", "2"])
    write_folder(tmp_path, files)
    with pytest.raises(DataError, match=r"subject_test.txt: row 3 is not a whole number"):
        load_uci_har(tmp_path, SPEC)


def test_short_signal_row(tmp_path):
    files, _ = layout_files()
    name = "train/Inertial Signals/body_gyro_y_train.txt"
    rows = files[name].decode().splitlines()
    rows[4] = rows[4][: 16 * 100]
    files[name] = _lines(rows)
    write_folder(tmp_path, files)
    with pytest.raises(DataError, match="body_gyro_y_train.txt: row 5 has missing"):
        load_uci_har(tmp_path, SPEC)


def test_verify_reports_labels_subjects_and_values(tmp_path):
    files, _ = layout_files()
    write_folder(tmp_path, files)
    train, test = load_uci_har(tmp_path, SPEC)
    wrong_labels = UciHarSpec(
        train_counts=(3, 1, 2, 2, 2, 2),
        test_counts=SPEC.test_counts,
        train_subjects=SPEC.train_subjects,
        test_subjects=SPEC.test_subjects,
    )
    with pytest.raises(
        DataError, match=r"train: label counts \[2, 2, 2, 2, 2, 2\], expected \[3, 1"
    ):
        verify_uci_har(train, test, wrong_labels)
    wrong_subjects = UciHarSpec(
        train_counts=SPEC.train_counts,
        test_counts=SPEC.test_counts,
        train_subjects=frozenset({1, 4}),
        test_subjects=SPEC.test_subjects,
    )
    with pytest.raises(DataError, match=r"subjects missing \[4\], unexpected \[3\]"):
        verify_uci_har(train, test, wrong_subjects)
    train.X[3, 7, 2] = np.nan
    with pytest.raises(DataError, match="non-finite value at row 4, step 8, channel body_acc_z"):
        verify_uci_har(train, test, SPEC)


def test_lookup_order_env_then_cache(tmp_path, monkeypatch):
    files, _ = layout_files()
    assert find_uci_har() is None and not uci_har_available()
    with pytest.raises(DataError, match=ENV_VAR):
        load_uci_har(spec=SPEC)
    cache = tmp_path / "xdg_cache" / "larnn"
    write_folder(cache, files)
    assert find_uci_har() == cache / LAYOUT_DIR
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "uci_har.zip").write_bytes(layout_zip(files))
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert find_uci_har() == env_dir / "uci_har.zip"
    assert find_uci_har(tmp_path / "elsewhere") is None


# --- download over a local HTTP server -------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Serves server.routes: path -> (body, declared Content-Length)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        body, length = self.server.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes = {}
    httpd.url = f"http://127.0.0.1:{httpd.server_port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_download_with_progress(tmp_path, server):
    files, signals = layout_files()
    body = uci_download_zip(files)
    server.routes["/har.zip"] = (body, len(body))
    calls = []
    dest = tmp_path / "dl"
    path = download_uci_har(
        dest,
        url=f"{server.url}/har.zip",
        progress=False,
        expected_size=len(body),
        expected_sha256=hashlib.sha256(body).hexdigest(),
        progress_callback=lambda done, total: calls.append((done, total)),
        spec=SPEC,
    )
    assert path == dest / CACHE_NAME
    assert calls[0] == (0, len(body)) and calls[-1] == (len(body), len(body))
    assert [p.name for p in dest.iterdir()] == [CACHE_NAME]
    assert_matches(*load_uci_har(dest, SPEC), signals)


def test_truncated_download_leaves_nothing(tmp_path, server):
    body = uci_download_zip(layout_files()[0])
    server.routes["/cut.zip"] = (body[: len(body) // 2], len(body))
    dest = tmp_path / "dl"
    with pytest.raises(DownloadError, match="cut off"):
        download_uci_har(dest, url=f"{server.url}/cut.zip", progress=False, spec=SPEC)
    assert list(dest.iterdir()) == []
    assert find_uci_har(dest) is None


def test_download_checks_size_and_checksum(tmp_path, server):
    body = uci_download_zip(layout_files()[0])
    server.routes["/har.zip"] = (body, len(body))
    url = f"{server.url}/har.zip"
    with pytest.raises(DownloadError, match="expected 5"):
        download_uci_har(tmp_path, url=url, progress=False, expected_size=5, spec=SPEC)
    with pytest.raises(DownloadError, match="sha256"):
        download_uci_har(tmp_path, url=url, progress=False, expected_sha256="0" * 64, spec=SPEC)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_uci_har(tmp_path, url=f"{server.url}/missing", progress=False, spec=SPEC)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_download_is_removed(tmp_path, server):
    body = b"PK\x05\x06" + b"\x00" * 100
    server.routes["/bad.zip"] = (body, len(body))
    with pytest.raises(DataError, match="zip"):
        download_uci_har(tmp_path / "dl", url=f"{server.url}/bad.zip", progress=False, spec=SPEC)
    assert find_uci_har(tmp_path / "dl") is None


def test_offline_download_says_how_to_use_a_copy(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=f"Could not reach.*{ENV_VAR}"):
        download_uci_har(tmp_path, url=f"http://127.0.0.1:{port}/x.zip", progress=False)


# --- the real data ---------------------------------------------------------------------


def test_real_uci_har(uci_har_dir):
    train, test = load_uci_har(uci_har_dir)  # verifies the published counts
    assert train.X.shape == (7352, 128, 9) and test.X.shape == (2947, 128, 9)
    assert np.bincount(train.y).tolist() == [1226, 1073, 986, 1286, 1374, 1407]
    assert np.bincount(test.y).tolist() == [496, 471, 420, 491, 532, 537]
    assert set(test.groups.tolist()) == {2, 4, 9, 10, 12, 13, 18, 20, 24}
    assert not set(train.groups.tolist()) & set(test.groups.tolist())
