"""core.access: which addresses count as this machine only, and typed paths under data roots."""

from __future__ import annotations

import os

import pytest

from core import access
from core.data import DataError


@pytest.mark.parametrize(
    "address, loopback",
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (None, False),
        ("", False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("myhost.example", False),
    ],
)
def test_loopback_addresses(address, loopback):
    assert access.is_loopback(address) is loopback


def test_non_loopback_bind_is_refused_unless_the_operator_allows_it(monkeypatch):
    monkeypatch.delenv(access.ALLOW_REMOTE_VAR, raising=False)
    assert access.bind_refusal("127.0.0.1") is None
    for address in (None, "0.0.0.0"):
        why = access.bind_refusal(address)
        assert why and "--server.address 127.0.0.1" in why and access.ALLOW_REMOTE_VAR in why
    monkeypatch.setenv(access.ALLOW_REMOTE_VAR, "1")
    assert access.bind_refusal("0.0.0.0") is None


def test_local_server_reads_any_path_without_roots(monkeypatch, tmp_path):
    monkeypatch.delenv(access.DATA_ROOTS_VAR, raising=False)
    assert access.check_typed_path(f" {tmp_path} ", remote=False) == tmp_path


def test_remote_server_without_roots_reads_no_typed_path(monkeypatch, tmp_path):
    monkeypatch.delenv(access.DATA_ROOTS_VAR, raising=False)
    with pytest.raises(DataError, match=access.DATA_ROOTS_VAR):
        access.check_typed_path(str(tmp_path), remote=True)


def test_paths_must_lie_under_a_data_root(monkeypatch, tmp_path):
    inside, other = tmp_path / "data" / "pets", tmp_path / "secret"
    inside.mkdir(parents=True)
    other.mkdir()
    (inside / "escape").symlink_to(other)
    monkeypatch.setenv(access.DATA_ROOTS_VAR, os.pathsep.join([str(tmp_path / "data"), "/nonexistent"]))
    for remote in (True, False):  # roots, once set, hold for local servers too
        assert access.check_typed_path(str(inside), remote) == inside.resolve()
        for bad in ("/", "/etc", str(other), str(inside / ".." / ".." / "secret"), str(inside / "escape")):
            with pytest.raises(DataError, match="outside the folders this server may read") as e:
                access.check_typed_path(bad, remote)
            assert "\n" not in str(e.value)
