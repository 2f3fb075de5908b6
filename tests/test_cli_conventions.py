"""Command-line conventions, end to end with the real program: where `--config` may go,
what Ctrl-C and SIGTERM do to a crawl, and archives that are not there or cannot be made."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from storage.archive import Archive
from storage.engine import normalise_database_url
from tests.helpers import EXECUTABLE, EmbassyWatch, clean_environment, write_config
from tests.replica.site import ReplicaSite

NO_SITE = ["http://127.0.0.1:9/"]  # nothing is crawled by these tests but the replica
INTERRUPTED = re.compile(
    r"^embassy-watch: interrupted by (SIGINT|SIGTERM): 3 listing pages and (\d+) statement "
    r"pages recorded(?: \((\d+) new\))?; nothing else crawled, "
    r"alerts are sent by the next crawl or run$"
)


def config_for(directory: Path, database_url: str) -> Path:
    directory.mkdir(exist_ok=True)
    return write_config(directory, database_url, NO_SITE)


def embassy_watch(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXECUTABLE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_environment(),
        check=False,
    )


# -- --config before or after the command ---------------------------------------------------


def test_config_goes_before_or_after_the_command_and_after_wins(tmp_path: Path) -> None:
    made = tmp_path / "made.db"
    Archive.open(f"sqlite:///{made}").close()  # an empty archive
    present = config_for(tmp_path / "present", f"sqlite:///{made}")
    absent = config_for(tmp_path / "absent", f"sqlite:///{tmp_path / 'absent.db'}")

    before = embassy_watch("--config", str(present), "statements")
    assert (before.returncode, before.stderr) == (
        0,
        "no statements archived yet (run `embassy-watch crawl`)\n",
    )

    after_wins = embassy_watch("--config", str(absent), "statements", "--config", str(present))
    assert after_wins.returncode == 0, after_wins.stderr

    other_way = embassy_watch("--config", str(present), "statements", "--config", str(absent))
    assert other_way.returncode == 1
    assert str(tmp_path / "absent.db") in other_way.stderr

    group_help = embassy_watch("--help").stdout
    assert "--config PATH" in group_help


# -- Ctrl-C and SIGTERM during a crawl ---------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "times"),
    [(signal.SIGINT, 1), (signal.SIGTERM, 2)],
    ids=["SIGINT: the page in flight finishes", "SIGTERM twice: stops at once"],
)
def test_an_interrupted_crawl_says_so_in_one_line_and_keeps_what_it_recorded(
    replica: ReplicaSite, ew: EmbassyWatch, tmp_path: Path, signum: signal.Signals, times: int
) -> None:
    # Slow enough to be mid-crawl when the signal comes, and for a second signal to come
    # while the page in flight is still awaited.
    replica.latency = 0.3 * times
    log = tmp_path / "crawl.log"
    with ew.start("crawl", log=log) as crawl:
        crawl.wait_for_log("new: ", count=2)
        crawl.process.send_signal(signum)
        if times == 2:
            crawl.wait_for_log(f"{signum.name}: closing the crawl")
            crawl.process.send_signal(signum)
        assert crawl.process.wait(timeout=30) == 1
    output = crawl.output()
    assert "Traceback" not in output and "Error" not in output
    said = INTERRUPTED.match(output.splitlines()[-1])
    assert said, output
    assert said.group(1) == signum.name
    recorded = int(said.group(2))
    assert recorded >= 2 and said.group(3) == str(recorded)  # a first crawl: every one new
    assert "replica: done" not in output and "FAILED" not in output  # no summary: the one line
    assert (f"{signum.name} again: stopping now" in output) == (times == 2)

    # The archive holds what the line says, each page whole; the next crawl carries on.
    revisions = [json.loads(line) for line in ew.run("export").stdout.splitlines()]
    assert len(revisions) == recorded
    assert all(row["revision"] == 1 and row["title"] and row["body"] for row in revisions)
    replica.latency = 0
    done = ew.crawl()
    assert f"{24 - recorded} new" in done.stdout and f"{recorded} unchanged" in done.stdout


# -- archives that are not there, or cannot be made ---------------------------------------

READ_ONLY_COMMANDS = [
    ("status",),
    ("statements",),
    ("history", "1"),
    ("show", "1"),
    ("diff", "1"),
    ("changes",),
    ("outbox",),
    ("export",),
    ("thin",),
    ("serve", "--port", "0"),
    ("verify", "1"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=lambda c: c[0])
def test_a_command_that_reads_makes_no_archive_where_there_is_none(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    mistyped = tmp_path / "archvie.db"
    config = config_for(tmp_path, f"sqlite:///{mistyped}")
    done = embassy_watch(*command, "--config", str(config), timeout=30)
    assert done.returncode == 1
    assert done.stderr == (
        f"embassy-watch: no archive at {mistyped} (run `embassy-watch crawl` or `run` first)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embassy-watch.toml"]


def test_a_missing_folder_is_named_and_not_made(tmp_path: Path) -> None:
    where = tmp_path / "no-such-folder" / "archive.db"
    config = config_for(tmp_path, f"sqlite:///{where}")
    done = embassy_watch("crawl", "--config", str(config))
    assert done.returncode == 1
    assert done.stderr == (
        f"embassy-watch: cannot open the archive: {where}: "
        f"its folder {where.parent} does not exist\n"
    )
    assert not where.parent.exists()


def read_only_folder(folder: Path, command: list[str]) -> list[str]:
    """`command` seeing `folder` read-only: by its mode, or (root passes modes by) on a
    read-only file system mounted there in a mount namespace of the command's own."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return command
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-m", "true"]).returncode:
        pytest.skip("running as root without mount namespaces: no folder is read-only to us")
    mount = 'mount -t tmpfs -o ro,size=64k none "$0" && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", mount, str(folder), *command]


def test_a_read_only_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    where = folder / "archive.db"
    config = config_for(tmp_path, f"sqlite:///{where}")
    command = read_only_folder(folder, [str(EXECUTABLE), "crawl", "--config", str(config)])
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=clean_environment(), check=False
    )
    folder.chmod(0o755)
    assert done.returncode == 1
    assert done.stderr == (
        f"embassy-watch: cannot open the archive: {where}: its folder {folder} is not writable\n"
    )


@pytest.mark.postgres
def test_postgresql_a_missing_database_and_an_empty_one(tmp_path: Path) -> None:
    from tests.conftest import postgres_database

    missing = "postgresql://postgres@127.0.0.1:5432/ew_no_such_database"
    config = config_for(tmp_path / "missing", missing)
    for command in ("status", "crawl"):
        done = embassy_watch(command, "--config", str(config))
        assert done.returncode == 1
        assert len(done.stderr.splitlines()) == 1
        assert done.stderr.startswith(f"embassy-watch: cannot open the archive: {missing}: ")
        assert 'database "ew_no_such_database" does not exist' in done.stderr

    with postgres_database() as empty:
        config = config_for(tmp_path / "empty", empty)
        done = embassy_watch("statements", "--config", str(config))
        assert done.returncode == 1
        assert done.stderr == (
            f"embassy-watch: no archive at {empty} (run `embassy-watch crawl` or `run` first)\n"
        )
        engine = create_engine(normalise_database_url(empty))
        try:
            assert inspect(engine).get_table_names() == []  # nothing made
        finally:
            engine.dispose()
