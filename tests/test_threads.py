import pytest

from worldmodel import threads


def test_explicit_count_wins_over_env(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "3")
    assert threads.resolve_threads(2) == 2


def test_env_overrides_auto_and_null(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "1")
    assert threads.resolve_threads(None) == 1
    assert threads.resolve_threads("auto") == 1


def test_auto_is_physical_cores(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    assert threads.resolve_threads("auto") == threads.physical_cores() >= 1


@pytest.mark.parametrize("bad", [True, -1, "abc", 5000])
def test_bad_values_name_the_source(bad, monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    with pytest.raises(ValueError, match="train.threads"):
        threads.resolve_threads(bad, source="train.threads")


def test_configure_sets_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    before = torch.get_num_threads()
    try:
        assert threads.configure_torch_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
