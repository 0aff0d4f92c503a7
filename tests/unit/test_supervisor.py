from connectors.connect_api import ConnectorState
from connectors.supervisor import Supervisor


class FakeConnect:
    def __init__(self) -> None:
        self.states = {"a-source": ConnectorState("a-source", "RUNNING", ["FAILED"], "org.postgresql.PSQLException: x\n at")}
        self.restarted: list[str] = []

    def status(self, name: str) -> ConnectorState:
        return self.states[name]

    def restart_failed(self, name: str) -> None:
        self.restarted.append(name)


def test_a_failed_task_is_restarted_with_exponential_back_off_and_counted():
    now = [0.0]
    connect = FakeConnect()
    sup = Supervisor(connect, ["a-source"], first_delay=2, max_delay=5, clock=lambda: now[0])
    for t in (0, 1, 2, 3, 5, 6, 11, 16):
        now[0] = t
        sup.tick()
    # restarts at 0, 2 (+2), 6 (+4), 11 (+5, capped), 16 (+5)
    assert sup.watched["a-source"].restarts == 5
    assert sup.snapshot()["a-source"] == {"state": "RUNNING/FAILED", "restarts": 5,
                                          "last_failure": "org.postgresql.PSQLException: x"}


def test_running_again_resets_the_back_off():
    now = [0.0]
    connect = FakeConnect()
    sup = Supervisor(connect, ["a-source"], first_delay=2, max_delay=60, clock=lambda: now[0])
    for t in (0, 2, 6):
        now[0] = t
        sup.tick()
    connect.states["a-source"] = ConnectorState("a-source", "RUNNING", ["RUNNING"])
    now[0] = 7
    sup.tick()
    connect.states["a-source"] = ConnectorState("a-source", "RUNNING", ["FAILED"], "boom")
    for t in (30, 32):
        now[0] = t
        sup.tick()
    assert connect.restarted == ["a-source"] * 5  # 0, 2, 6, then 30 and 32 with the first delay again
