"""Where the sign-up services find the stack's addresses: the process environment (tests and
`make env` put them there), else the env file `make up` wrote for CDC_STACK_DIR."""
from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=1)
def _stack_file() -> dict[str, str]:
    from cli import stack_env

    return stack_env.load()


def value(name: str) -> str:
    found = os.environ.get(name) or _stack_file().get(name)
    if not found:
        raise LookupError(f"{name} is not set and not in the stack's env file (is the component running? `make up`)")
    return found
