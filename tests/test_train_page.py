"""The "Train on my data" page (app/pages/train_on_my_data.py) under AppTest, its pure parts
(app/training.py), and the explorer opening a pair the page trained."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_app import chart_specs

from app import catalog, training
from larnn import jobs
from larnn.data.labelled import read_labelled

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = REPO_ROOT / "app" / "pages" / "train_on_my_data.py"
EXPLORER = REPO_ROOT / "app" / "main.py"


def npz_bytes(n_a: int = 5, n_b: int = 7, channels: int = 2, length: int = 20, seed=0) -> bytes:
    """Classes 'a' (n_a cases) and 'b' (n_b), lengths 8..length."""
    rng = np.random.default_rng(seed)
    n = n_a + n_b
    X = rng.normal(size=(n, length, channels)).astype(np.float32)  # (N, T, C)
    y = np.array(["a"] * n_a + ["b"] * n_b)
    X[n_a:, 2:6, 0] += 2.0
    lengths = rng.integers(8, length + 1, size=n)
    lengths[:2] = (length, 8)  # the longest and the shortest are always there
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y, lengths=lengths)
    return buffer.getvalue()


def aeon_file(name: str) -> Path:
    aeon = pytest.importorskip("aeon", reason='aeon reads .ts files: pip install -e ".[aeon]"')
    return Path(aeon.__file__).parent / "datasets" / "data" / "BasicMotions" / name


@pytest.fixture
def page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv(jobs.USER_DIR_ENV, str(tmp_path / "user"))
    return AppTest.from_file(str(PAGE), default_timeout=60)


def upload(at: AppTest, train: tuple[str, bytes], test: tuple[str, bytes] | None = None):
    at.file_uploader(key="train_upload").set_value((*train, "application/octet-stream"))
    if test is not None:
        at.file_uploader(key="test_upload").set_value((*test, "application/octet-stream"))
    return at.run()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_page_asks_for_a_train_file_and_offers_the_three_formats(page):
    at = page.run()
    assert not at.exception and not at.error
    assert "Upload a labelled train file (up to 50 MB" in at.info[0].value
    limits = {u.key: u.proto.max_upload_size_mb for u in at.get("file_uploader")}
    assert limits == {"train_upload": 50, "test_upload": 50}
    types = {tuple(u.proto.type) for u in at.get("file_uploader")}
    assert types == {(".ts", ".csv", ".npz")}


def test_summary_shows_cases_classes_with_counts_channels_and_lengths(page):
    at = upload(page.run(), ("mine.npz", npz_bytes(5, 7)), ("mine_test.npz", npz_bytes(2, 3)))
    assert not at.exception and not at.error
    assert metrics(at) == {
        "Cases (train / test)": "12 / 5",
        "Classes": "2",
        "Channels": "2",
        "Steps per case": "8..20",
    }
    table = at.dataframe[0].value
    assert table.to_dict("list") == {"class": ["a", "b"], "train": [5, 7], "test": [2, 3]}
    assert any("mine_test.npz is scored once" in c.value for c in at.caption)
    assert [b.label for b in at.button] == ["Train"]
    settings = {n.label: n.value for n in at.number_input}
    assert settings == {
        "Learning rate": 2e-3,
        "Seeds (a pair each)": 1,
        "Budget per model (s)": 300,
    }
    assert (
        at.selectbox(key=next(b.key for b in at.selectbox if b.key.startswith("readout_"))).value
        == "mean"
    )


def test_summary_of_basic_motions_train_and_test_files(page):
    train, test = aeon_file("BasicMotions_TRAIN.ts"), aeon_file("BasicMotions_TEST.ts")
    at = upload(page.run(), (train.name, train.read_bytes()), (test.name, test.read_bytes()))
    assert not at.exception and not at.error
    assert metrics(at) == {
        "Cases (train / test)": "40 / 40",
        "Classes": "4",
        "Channels": "6",
        "Steps per case": "100",
    }
    table = at.dataframe[0].value
    assert table["train"].tolist() == [10] * 4 and table["test"].tolist() == [10] * 4
    plan = next(c.value for c in at.caption if c.value.startswith("Chosen from the data"))
    assert "one cell step per 2 samples" in plan  # 100 steps: at most 64 cell steps
    assert "plus the stem's" in plan  # the residual around the encoder
    assert "5 validation folds" in plan


def test_without_a_test_file_a_fifth_is_held_out(page):
    at = upload(page.run(), ("mine.npz", npz_bytes(10, 10)))
    assert metrics(at)["Cases (file / held out for test)"] == "20 / 4"
    assert any("No test file: a fifth of mine.npz" in c.value for c in at.caption)


BAD_FILES = [
    (
        ("no_label.csv", b"case_id,time,x\n1,0,0.5\n1,1,0.7\n"),
        None,
        "no_label.csv: no 'label' column",
    ),
    (
        ("objects.npz", None),  # filled in below: an npz holding pickled objects
        None,
        "larnn never unpickles",
    ),
    (
        ("mine.npz", npz_bytes(channels=2)),
        ("other.npz", npz_bytes(channels=3)),
        "other.npz has 3 channel(s)",
    ),
    (
        ("notes.csv", b"\x00\x01\x02 not text"),
        None,
        "notes.csv contains NUL bytes: it is not a CSV text file",
    ),
    (
        ("short.csv", b"case_id,label,x\n1,a,0.5\n2,b,0.1\n2,b,0.2\n"),
        None,
        "case_id '1' has a single time step",
    ),
]


@pytest.mark.parametrize("train, test, message", BAD_FILES)
def test_a_bad_file_gives_a_clear_message(page, train, test, message):
    if train[1] is None:
        buffer = io.BytesIO()
        np.savez(buffer, X=np.zeros((2, 3, 1)), y=np.array([{"a": 1}, {"b": 2}], dtype=object))
        train = (train[0], buffer.getvalue())
    at = upload(page.run(), train, test)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("**Reading the files:**"), errors
    assert message in errors[0], errors[0]
    assert not [b for b in at.button if b.label == "Train"]


def test_an_upload_while_another_job_runs_is_told_to_wait(page, tmp_path):
    running_data = jobs.save_upload("first.npz", npz_bytes(20, 20, seed=1))
    job, _ = jobs.start_job(jobs.JobSpec(train_file=str(running_data), budget_s=3600, nice=0))
    try:
        at = upload(page.run(), ("second.npz", npz_bytes()))
        assert not at.exception and not at.error
        warning = at.warning[0].value
        assert "Another training job is running (on first.npz)" in warning
        assert "one pair at a time" in warning
        assert "Train" not in [b.label for b in at.button]
        assert "Cancel training" in [b.label for b in at.button]
        assert at.subheader[-1].value == "Training on first.npz"
        # The same files as the running job, in another session: its progress, no duplicate.
        other = AppTest.from_file(str(PAGE), default_timeout=60).run()
        other = upload(other, ("first.npz", npz_bytes(20, 20, seed=1)))
        assert any("training already" in i.value for i in other.info)
        assert len(jobs.list_jobs()) == 1
        other.button(key=f"cancel_{job.job_id}").click().run()
        assert job.wait(timeout=120).state == "cancelled"
    finally:
        job.cancel()
        job.wait(timeout=120)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The page's own Train: a pair on a small npz, the budget cutting each stage to an
    epoch, the readout and learning rate set on the page."""
    root = tmp_path_factory.mktemp("user")
    before = os.environ.get(jobs.USER_DIR_ENV)
    os.environ[jobs.USER_DIR_ENV] = str(root)
    try:
        at = AppTest.from_file(str(PAGE), default_timeout=60).run()
        at = upload(at, ("mine.npz", npz_bytes(16, 16)), ("mine_test.npz", npz_bytes(4, 4, seed=2)))
        at.selectbox(
            key=next(b.key for b in at.selectbox if b.key.startswith("readout_"))
        ).set_value("last")
        at.number_input(
            key=next(n.key for n in at.number_input if n.key.startswith("b_"))
        ).set_value(10)
        at.button[0].click().run()
        assert not at.exception and not at.error
        job = jobs.active_job() or jobs.latest_job()
        assert job is not None and job.spec().readout == "last" and job.spec().budget_s == 10
        status = job.wait(timeout=600)
        assert status.state == "done", status.message
        at.run()
        yield root, status, at
    finally:
        if before is None:
            os.environ.pop(jobs.USER_DIR_ENV, None)
        else:
            os.environ[jobs.USER_DIR_ENV] = before


def test_train_runs_the_pair_and_the_page_offers_the_explorer(trained):
    root, status, at = trained
    assert not at.exception and not at.error
    assert at.subheader[-1].value == "Last training job"
    table = at.dataframe[-1].value
    assert table["model"].tolist() == ["LARNN", "LSTM"]
    assert table["checkpoint"].tolist() == list(status.checkpoints.values())
    assert table["test accuracy"].between(0, 1).all()
    assert table["majority class"].between(0, 1).all()
    assert table["epochs (how chosen)"].str.contains("mean validation accuracy over").all()
    for name, verdict in status.verdicts.items():  # said on the page, never a plain "Done"
        said = table.loc[table["checkpoint"] == name, "learned"].item()
        assert said == "yes" if verdict["learned"] else said.startswith("NO: did not learn")
    assert any(b.label == "Open in the explorer" for b in at.button)


def test_the_explorer_opens_the_trained_pair_on_its_data(trained, monkeypatch):
    root, status, _ = trained
    monkeypatch.setenv(jobs.USER_DIR_ENV, str(root))
    at = AppTest.from_file(str(EXPLORER), default_timeout=90)
    at.session_state[catalog.CHOSEN] = training.explorer_state(status)  # as the page hands over
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key="dataset").value == "file:mine.npz"
    pickers = {s.key: s.value for s in at.selectbox if s.key and s.key.startswith("model_")}
    assert pickers == {
        "model_larnn_file:mine.npz": status.checkpoints["larnn"],
        "model_lstm_file:mine.npz": status.checkpoints["lstm"],
    }
    assert len(chart_specs(at)) >= 4  # the signal, the heatmaps, the predictions


def test_summarise_refuses_a_class_only_in_the_test_file(tmp_path):
    train_path, test_path = tmp_path / "a.npz", tmp_path / "b.npz"
    train_path.write_bytes(npz_bytes(5, 5))
    np.savez(test_path, X=np.zeros((2, 20, 2), np.float32), y=np.array(["a", "c"]))
    with pytest.raises(Exception, match="class\\(es\\) 'c' appear only in the test file"):
        training.summarise(read_labelled(train_path), read_labelled(test_path))


def _three_class_npz(counts: dict[str, int]) -> bytes:
    rng = np.random.default_rng(0)
    y = np.array([c for c, n in counts.items() for _ in range(n)])
    buffer = io.BytesIO()
    np.savez(buffer, X=rng.normal(size=(len(y), 12, 2)).astype(np.float32), y=y)
    return buffer.getvalue()


def test_a_class_no_test_case_scores_is_named_on_the_page(page):
    """Issue 29: a class with one case was accepted silently: the hold-out leaves it to
    training, so no validation or test case ever scores it."""
    at = upload(page.run(), ("few.npz", _three_class_npz({"a": 6, "b": 6, "lone": 1, "two": 2})))
    assert not at.exception and not at.error
    table = at.dataframe[0].value.set_index("class")
    assert table.loc["lone", "test"] == 0 and table.loc["two", "test"] == 1  # as held out
    warned = [w.value for w in at.warning if "No test case" in w.value]
    assert warned and "'lone' (1 case)" in warned[0] and "'two'" not in warned[0]
    assert [b.label for b in at.button] == ["Train"]  # handled, not refused


def test_the_summary_counts_the_test_part_as_the_training_will_hold_it_out(tmp_path):
    from larnn.tasks import load_task, make_split, untested_classes
    from larnn.train import describe_task

    path = tmp_path / "few.npz"
    path.write_bytes(_three_class_npz({"a": 6, "b": 6, "lone": 1, "two": 2}))
    summary = training.summarise(read_labelled(path), None)
    task = load_task(str(path), make_split(str(path)))
    tested = np.bincount(task.test.y, minlength=4)
    assert summary.classes["test"].tolist() == tested.tolist() == [1, 1, 0, 1]
    assert summary.test_cases == len(task.test) == 3
    assert untested_classes(task) == ["lone"]
    assert "warning: no test case of class(es) 'lone'" in describe_task(task)


def test_a_refused_file_is_removed_at_once_and_an_accepted_one_kept_for_a_reload(page, tmp_path):
    """Issue 29: every file uploaded on the page stayed on disk, refused ones included; an
    accepted upload was lost on reload."""
    uploads = tmp_path / "user" / "uploads"
    at = upload(page.run(), ("broken.npz", b"not an npz at all"))
    assert any("broken.npz" in e.value for e in at.error)
    assert not any(uploads.rglob("*.npz"))  # refused: removed at once
    assert any("removed at once" in c.value for c in at.caption)  # the rule, on the page
    at = upload(page.run(), ("mine.npz", npz_bytes(5, 7)))
    assert not at.error and [p.name for p in uploads.rglob("*.npz")] == ["mine.npz"]
    reloaded = AppTest.from_file(str(PAGE), default_timeout=60).run()  # a new session
    kept = reloaded.selectbox(key="kept_train")
    assert kept.value is None and len(kept.options) == 1
    assert kept.options[0].startswith("mine.npz (") and "uploaded" in kept.options[0]
    kept.set_value(jobs.kept_uploads()[0]).run()
    assert not reloaded.exception and not reloaded.error
    assert metrics(reloaded)["Cases (file / held out for test)"] == "12 / 2"
    assert [b.label for b in reloaded.button] == ["Train"]


def test_opening_the_explorer_logs_no_session_state_warning(tmp_path, monkeypatch):
    """Issue 29: "Open in the explorer" left Streamlit's warning in the server log: 'The
    widget with key "model_larnn_..." was created with a default value but also had its
    value set via the Session State API'."""
    import json

    from streamlit.elements.lib import policies
    from test_app import APP, make_checkpoints

    monkeypatch.setenv("LARNN_CHECKPOINT_DIR", str(make_checkpoints(tmp_path / "shipped")))
    monkeypatch.setenv(jobs.USER_DIR_ENV, str(tmp_path / "user"))
    job = tmp_path / "user" / "jobs" / "20260101-000000-abcdef12"
    job.mkdir(parents=True)
    (job / "spec.json").write_text(jobs.JobSpec(train_file=str(tmp_path / "x.npz")).to_json())
    pair = {"larnn": "probe_recall_larnn", "lstm": "probe_recall_lstm"}
    status = {"state": "done", "dataset_id": "probe:recall", "checkpoints": pair}
    (job / "status.json").write_text(json.dumps(status))
    logged = []
    # The check runs only under a server's runtime (AppTest has none) and warns once a process.
    monkeypatch.setattr(policies.runtime, "exists", lambda: True)
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies._LOGGER, "warning", lambda *args, **kw: logged.append(args))
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page("pages/train_on_my_data.py").run()
    next(b for b in at.button if b.label == "Open in the explorer").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value.startswith("LARNN explorer")  # switched
    pickers = {s.key: s.value for s in at.selectbox if s.key.startswith("model_")}
    assert pickers == {
        "model_larnn_probe:recall": pair["larnn"],
        "model_lstm_probe:recall": pair["lstm"],
    }
    assert not logged, logged


def test_progress_words_and_curves_follow_the_status():
    def stage(model: str, name: str, epochs: int) -> list[jobs.EpochRow]:
        return [
            jobs.EpochRow(model, e, 1.0 / e, 0.5 + 0.1 * e, 0.9, name, 4)
            for e in range(1, epochs + 1)
        ]

    larnn = [*stage("larnn", "fold 1/2", 4), *stage("larnn", "fold 2/2", 4)]
    rows = tuple(larnn + stage("larnn", "refit", 4) + stage("lstm", "fold 1/2", 2))
    status = jobs.JobStatus("j", "running", "lstm", 6, 3, rows, dataset_id="file:x.ts")
    assert status.fraction == pytest.approx((3 + 2 / 4) / 6)
    line = training.progress_line(status)
    assert line == (
        "LSTM (seed 0): fold 1/2, epoch 2 of 4, training loss 0.500, validation accuracy 70.0%"
    )
    figure = training.curves_figure(status)
    names = [(t.name, t.hovertext) for t in figure.data]
    assert names[:5] == [
        ("LARNN", s) for s in ("fold 1/2", "fold 1/2", "fold 2/2", "fold 2/2", "refit")
    ]
    assert list(figure.data[1].y) == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert "Training: file:x.ts" in figure.layout.title.text
    done = jobs.JobStatus(
        "j", "done", "lstm", 6, 6, rows, checkpoints={"larnn": "a", "lstm": "b"},
        all_checkpoints=("a", "b"), verdicts={"a": {"learned": True, "reason": "learned"}},
        dataset_id="file:x",
    )  # fmt: skip
    assert done.fraction == 1.0 and training.progress_line(done).startswith("Done: a, b")
    assert training.explorer_state(done) == {
        "dataset": "file:x",
        "split": "test",
        "model_larnn_file:x": "a",
        "model_lstm_file:x": "b",
    }


def test_a_model_that_did_not_learn_is_never_plain_done():
    reason = "did not learn: its training loss stayed at chance (1.099, ...)"
    done = jobs.JobStatus(
        "j", "done", "lstm", 6, 6, checkpoints={"larnn": "a", "lstm": "b"},
        all_checkpoints=("a", "b"), verdicts={"a": {"learned": False, "reason": reason},
        "b": {"learned": True, "reason": "learned"}}, dataset_id="file:x",
    )  # fmt: skip
    line = training.progress_line(done)
    assert line.startswith("Done, but a model did not learn: a did not learn: its training loss")
    assert "Done, but a model did not learn" in training.curves_figure(done).layout.title.text
