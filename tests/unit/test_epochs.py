"""Tests for zabd.storage.epochs: acceptedEpoch / currentEpoch and 3.8's startup rules."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from zabd.storage.epochs import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    UPDATING_EPOCH,
    EpochFileError,
    Epochs,
    mark_updating_epoch,
    read_epochs,
    write_epoch,
)

ZXID_EPOCH_3 = (3 << 32) | 7


def files(snap_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(snap_dir.iterdir())}


def test_write_epoch_is_decimal_ascii_without_newline_and_leaves_no_temp(tmp_path: Path) -> None:
    write_epoch(str(tmp_path), CURRENT_EPOCH, 1)
    write_epoch(str(tmp_path), ACCEPTED_EPOCH, 4294967296)
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"4294967296", CURRENT_EPOCH: b"1"}
    write_epoch(str(tmp_path), CURRENT_EPOCH, 12)  # replaces
    assert (tmp_path / CURRENT_EPOCH).read_bytes() == b"12"


def test_missing_files_are_created_with_the_epoch_of_the_last_zxid(tmp_path: Path) -> None:
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(accepted=3, current=3)
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"3", CURRENT_EPOCH: b"3"}
    assert read_epochs(str(tmp_path), 0) == Epochs(3, 3)  # present files are read, not rewritten


def test_an_empty_data_dir_starts_at_epoch_zero(tmp_path: Path) -> None:
    assert read_epochs(str(tmp_path), 0) == Epochs(0, 0)
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"0", CURRENT_EPOCH: b"0"}


def test_existing_files_are_read_and_may_be_ahead_of_the_log(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"5")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"6")
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(accepted=6, current=5)


def test_a_missing_accepted_epoch_created_below_current_epoch_fails(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"4")
    # acceptedEpoch was missing: created as 3, which is below currentEpoch 4, so startup fails (as in 3.8).
    with pytest.raises(EpochFileError, match="accepted epoch 3 is less than the current epoch 4") as info:
        read_epochs(str(tmp_path), ZXID_EPOCH_3)
    assert info.value.path == os.path.join(str(tmp_path), ACCEPTED_EPOCH)
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"3", CURRENT_EPOCH: b"4"}


def test_accepted_below_current_fails_naming_accepted_epoch(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"5")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"4")
    with pytest.raises(EpochFileError, match="acceptedEpoch: the accepted epoch 4 is less than the current epoch 5"):
        read_epochs(str(tmp_path), 0)


def test_current_below_the_last_zxid_fails_naming_current_epoch(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"2")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"9")
    with pytest.raises(EpochFileError, match=r"currentEpoch: the current epoch 2 is older than the last zxid 0x300000007") as info:
        read_epochs(str(tmp_path), ZXID_EPOCH_3)
    assert info.value.path == str(tmp_path / CURRENT_EPOCH)


def test_current_epoch_tmp_recovers_an_interrupted_write(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"2")
    (tmp_path / (CURRENT_EPOCH + ".tmp")).write_bytes(b"3")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"3")
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(accepted=3, current=3)
    # The rename is finished: currentEpoch holds the value, the .tmp is gone.
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"3", CURRENT_EPOCH: b"3"}


def test_current_epoch_tmp_is_used_as_is_even_when_still_behind(tmp_path: Path) -> None:
    # 3.8 takes the .tmp value without checking it against the last zxid again.
    (tmp_path / CURRENT_EPOCH).write_bytes(b"1")
    (tmp_path / (CURRENT_EPOCH + ".tmp")).write_bytes(b"2")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"2")
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(accepted=2, current=2)


def test_current_epoch_tmp_is_ignored_when_current_epoch_is_fine(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"3")
    (tmp_path / (CURRENT_EPOCH + ".tmp")).write_bytes(b"9")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"3")
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(3, 3)
    assert (tmp_path / (CURRENT_EPOCH + ".tmp")).read_bytes() == b"9"  # 3.8 leaves it too


def test_an_unreadable_tmp_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(b"2")
    (tmp_path / (CURRENT_EPOCH + ".tmp")).write_bytes(b"")
    with pytest.raises(EpochFileError) as info:
        read_epochs(str(tmp_path), ZXID_EPOCH_3)
    assert info.value.path == str(tmp_path / (CURRENT_EPOCH + ".tmp"))


@pytest.mark.parametrize("content", [b"", b"abc", b" 3", b"3 ", b"0x3", b"3_0", b"9223372036854775808", b"\n3"])
@pytest.mark.parametrize("name", [CURRENT_EPOCH, ACCEPTED_EPOCH])
def test_files_that_do_not_parse_fail_naming_the_file(tmp_path: Path, name: str, content: bytes) -> None:
    write_epoch(str(tmp_path), CURRENT_EPOCH, 0)
    write_epoch(str(tmp_path), ACCEPTED_EPOCH, 0)
    (tmp_path / name).write_bytes(content)
    with pytest.raises(EpochFileError, match="not an epoch") as info:
        read_epochs(str(tmp_path), 0)
    assert info.value.path == str(tmp_path / name)


@pytest.mark.parametrize("content, value", [(b"7\n", 7), (b"7\r\nrest", 7), (b"+7", 7), (b"007", 7)])
def test_what_javas_readline_and_parselong_accept(tmp_path: Path, content: bytes, value: int) -> None:
    (tmp_path / CURRENT_EPOCH).write_bytes(content)
    (tmp_path / ACCEPTED_EPOCH).write_bytes(content)
    assert read_epochs(str(tmp_path), 0) == Epochs(value, value)


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / CURRENT_EPOCH).mkdir()  # rename over a directory fails
    with pytest.raises(EpochFileError, match="cannot write"):
        write_epoch(str(tmp_path), CURRENT_EPOCH, 1)
    assert not (tmp_path / (CURRENT_EPOCH + ".tmp")).exists()


def test_updating_epoch_takes_the_last_zxids_epoch_and_goes(tmp_path: Path) -> None:
    # 3.8's rule: a learner died after its sync's txns of epoch 3 were durable, before currentEpoch.
    (tmp_path / CURRENT_EPOCH).write_bytes(b"2")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"3")
    mark_updating_epoch(str(tmp_path), True)
    assert (tmp_path / UPDATING_EPOCH).read_bytes() == b""
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(accepted=3, current=3)
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"3", CURRENT_EPOCH: b"3"}


def test_a_leftover_updating_epoch_changes_nothing_and_goes(tmp_path: Path) -> None:
    # It died before any txn of the new epoch was durable: the old epoch stands.
    (tmp_path / CURRENT_EPOCH).write_bytes(b"3")
    (tmp_path / ACCEPTED_EPOCH).write_bytes(b"4")
    mark_updating_epoch(str(tmp_path), True)
    assert read_epochs(str(tmp_path), ZXID_EPOCH_3) == Epochs(accepted=4, current=3)
    assert files(tmp_path) == {ACCEPTED_EPOCH: b"4", CURRENT_EPOCH: b"3"}
    mark_updating_epoch(str(tmp_path), False)  # removing a missing marker is no error
