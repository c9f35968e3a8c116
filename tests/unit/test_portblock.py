"""claim_port_block: one run per block of ports, however many runs start at once."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from zabd.harness.portblock import claim_port_block, port_free


def _all_free(port: int) -> bool:
    return True


def test_the_first_block_when_nobody_holds_it(tmp_path: Path) -> None:
    with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free) as start:
        assert start == 21000


def test_a_held_block_is_skipped_until_released(tmp_path: Path) -> None:
    with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free) as first:
        with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free) as second:
            assert (first, second) == (21000, 21100)
    with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free) as again:
        assert again == 21000


def test_a_block_with_a_taken_port_is_skipped_and_not_held(tmp_path: Path) -> None:
    def taken(port: int) -> bool:
        return port != 21024  # the last port of the first block

    with claim_port_block(21000, lock_dir=str(tmp_path), is_free=taken) as start:
        assert start == 21100
        # The skipped block's lock was let go at once.
        with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free) as other:
            assert other == 21000


def test_no_block_left(tmp_path: Path) -> None:
    with claim_port_block(21000, candidates=2, lock_dir=str(tmp_path), is_free=_all_free):
        with claim_port_block(21000, candidates=2, lock_dir=str(tmp_path), is_free=_all_free):
            with pytest.raises(RuntimeError, match="no free block of 25 ports"):
                with claim_port_block(21000, candidates=2, lock_dir=str(tmp_path), is_free=_all_free):
                    pass


def test_the_block_is_let_go_when_the_run_fails(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free):
            raise KeyError("the suite failed")
    with claim_port_block(21000, lock_dir=str(tmp_path), is_free=_all_free) as start:
        assert start == 21000


def test_a_listening_port_is_not_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert not port_free(server.getsockname()[1])
