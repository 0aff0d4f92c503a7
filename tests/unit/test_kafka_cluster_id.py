"""The KRaft cluster id handed to the storage tool (stack/kafka.py)."""
from __future__ import annotations

import base64

from stack import kafka


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    ids = iter([b"\xf8" + bytes(15), b"\x00" * 16])   # the first encodes to '-A...'
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: type("U", (), {"bytes": next(ids)})())
    cid = kafka.new_cluster_id()
    assert not cid.startswith("-") and base64.urlsafe_b64decode(cid + "==") == b"\x00" * 16
