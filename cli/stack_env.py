"""How the CLI finds the stack: variables already in the environment win (a stack elsewhere,
docker compose), otherwise the env file that `up` wrote for CDC_STACK_DIR."""
from __future__ import annotations

import os

from stack.secrets import read_env_file
from stack.settings import StackSettings


def load() -> dict[str, str]:
    settings = StackSettings.from_env()
    values = read_env_file(settings.env_file)
    for key in list(values) + ["KAFKA_BOOTSTRAP_SERVERS", "CONNECT_URL"]:
        if os.environ.get(key):
            values[key] = os.environ[key]
    missing = [k for k in ("KAFKA_BOOTSTRAP_SERVERS", "CONNECT_URL") if k not in values]
    if missing:
        raise SystemExit(f"cannot find the stack ({', '.join(missing)} unknown): run `make up`, "
                         f"or export them (no env file at {settings.env_file})")
    return values
