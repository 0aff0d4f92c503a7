"""Faust's data folder: outside the working directory, and creatable on a machine that never ran a worker."""
import tempfile

from stack.kafka_client import KafkaAccess
from streams.faust_app import new_app


def test_a_fresh_machine_gets_the_data_folder_in_the_temp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = new_app("cdc-unit-fresh", KafkaAccess("127.0.0.1:9", "unit", "secret"), 1234)
    app._create_directories()  # what the worker does at start; failed before the parent existed
    assert app.conf.appdir.is_dir()
    assert app.conf.appdir.is_relative_to(tmp_path / "cdc-faust")
