"""Personal data is written only where the server's user alone can reach it: a DATA_DIR (or a link to it) of
another user is refused, no file of ours is opened through a planted link, and a planted api_key is not adopted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.api_keys import key_ring
from core.private_files import open_private, private_dir
from core.settings import Settings
from prediction_log.appender import LineAppender

OTHER_UID = 54_321

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def test_a_folder_of_ours_is_made_private(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "data" / "predictions")
    assert folder.stat().st_mode & 0o777 == 0o700


@needs_root
def test_a_data_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, OTHER_UID, OTHER_UID)
    with pytest.raises(PermissionError, match="uid 54321"):
        private_dir(theirs)


@needs_root
def test_a_link_of_another_user_is_refused_even_to_a_folder_of_ours(tmp_path: Path) -> None:
    ours = private_dir(tmp_path / "ours")
    link = tmp_path / "data"
    link.symlink_to(ours)
    assert private_dir(link) == link   # our own link to our own folder (a data disk mounted elsewhere) is fine
    os.lchown(link, OTHER_UID, OTHER_UID)
    with pytest.raises(PermissionError, match="symbolic link"):
        private_dir(link)


def test_no_file_of_ours_is_opened_through_a_planted_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    planted = private_dir(tmp_path / "data") / "2026-12-05.jsonl"
    planted.symlink_to(elsewhere)
    with pytest.raises(OSError):
        open_private(planted)
    with pytest.raises(OSError):
        LineAppender(planted).append(b'{"request_id": "x"}\n')
    assert not elsewhere.exists()


@needs_root
def test_an_api_key_file_another_user_planted_is_not_adopted(tmp_path: Path) -> None:
    data = private_dir(tmp_path / "data")
    planted = data / "api_key"
    planted.write_text("key-chosen-by-someone-else-0123\n")
    planted.chmod(0o600)
    os.chown(planted, OTHER_UID, OTHER_UID)
    with pytest.raises(PermissionError, match="api_key"):
        key_ring(Settings(api_key="", api_keys="", data_dir=data))
