"""The SMTP sink's mailbox: one JSON line per accepted message (append-only, flushed and
fsynced before the 250 answer). Whoever needs to read it (tests, the demo) finds it in the
component's data folder."""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

MAILBOX = "mailbox.jsonl"
REFUSED_DOMAINS = frozenset({"refused.example"})   # the sink answers 550 for these recipients

SLOW_PREFIX, SLOW_S = "slowmail+", 0.2                # a message to slowmail+...@ takes this long to accept


def slow(address: str) -> bool:
    return address.strip().lower().lstrip("<").startswith(SLOW_PREFIX)


def refuses(address: str) -> bool:
    return address.rsplit("@", 1)[-1].strip().lower().rstrip(">") in REFUSED_DOMAINS


def append(path: Path, message: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(message, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def by_message_id(messages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(m.get("message_id") or "" for m in messages)


def stack_mailbox() -> Path:
    """The mailbox of the current stack's `smtp` component (CDC_STACK_DIR)."""
    from stack.settings import StackSettings

    return StackSettings.from_env().run_dir / "components" / "smtp" / MAILBOX
