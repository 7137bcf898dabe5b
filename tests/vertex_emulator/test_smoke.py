from tests.support.processes import emulator_control


def test_health(vertex_emulator: str) -> None:
    health = emulator_control(vertex_emulator, "health")
    assert health["status"] == "ok"
    assert health["store"].endswith("vertex-state")
