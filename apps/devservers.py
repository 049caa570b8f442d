"""Throwaway servers for trying a fleet on one machine (`edgepipe dev postgres|mqtt`) and for the tests: a
PostgreSQL cluster (Debian's postgresql: initdb, pg_ctl) and a Mosquitto broker, each in a temporary folder on a
free localhost port, deleted when stopped."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TypeVar

from edgepipe.postprocess.errors import UserError

PG_USER = "edgepipe"  # the cluster's superuser and its database
START_TIMEOUT_S = 30


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = START_TIMEOUT_S) -> None:
    """Return once 127.0.0.1:port accepts a connection; UserError after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise UserError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s") from None
            time.sleep(0.05)


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl): on PATH, else Debian's
    /usr/lib/postgresql/VERSION/bin, newest version first."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # the folder of the real program, with its siblings
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not folders:
        raise UserError("PostgreSQL's initdb was not found: install Debian's postgresql package "
                        "(apt-get install --no-install-recommends postgresql)")
    return Path(folders[-1]).parent


def as_server_user() -> list[str]:
    """The command prefix that runs PostgreSQL's programs: initdb refuses root, so root runs them as postgres."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a server's program; UserError with its last line of output when it fails. Its own session: a Ctrl-C
    at the terminal reaches edgepipe only, which stops the servers in order."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, start_new_session=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise UserError(f"{what} failed: {lines[-1]}")


T = TypeVar("T", bound="Throwaway")


class Throwaway:
    """A server in a temporary folder: start() it (a context manager starts it, and stops it however the block
    ends), stop() stops it and deletes the folder."""

    def start(self) -> Throwaway:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: T) -> T:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThrowawayPostgres(Throwaway):
    """A PostgreSQL cluster in a temporary folder on 127.0.0.1:port, with the superuser and database "edgepipe".

    password None: no password for local connections (trust); else the server asks for it (scram-sha-256).
    durable False turns fsync off (fast; a crash of the machine may lose the last commits, a crash of the server
    does not). kill() stops it at once, as a crash would; start() again on the same port and data.
    """

    def __init__(self, port: int = 0, password: str | None = None, durable: bool = False) -> None:
        self.port = port or free_port()
        self.password = password
        self.durable = durable
        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="edgepipe-postgres-"))
        self.data = self.folder / "data"
        self._initialized = False

    @property
    def url(self) -> str:
        """postgresql://edgepipe@127.0.0.1:PORT/edgepipe (the password, when one is set, is not in it)."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{PG_USER}"

    def _pg(self, program: str, *args: str) -> list[str]:
        return [*as_server_user(), str(self.bin / program), *args]

    def start(self) -> ThrowawayPostgres:
        """Create the cluster (the first time) and start the server; returns once it accepts connections."""
        if not self._initialized:
            self._init()
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        log = self.folder / "server.log"
        run(self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "-t",
                     str(START_TIMEOUT_S), "start"), f"pg_ctl start (see {log})")
        if not self._initialized:
            env = {**os.environ, "PGPASSWORD": self.password or ""}
            run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, PG_USER],
                "createdb", env)
            self._initialized = True
        return self

    def _init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        args = ["-D", str(self.data), "-U", PG_USER, "--no-sync", "--auth-local=trust"]
        if self.password is None:
            args.append("--auth-host=trust")
        else:
            pwfile = self.folder / "pwfile"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres")
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            run(self._pg("initdb", *args), "initdb")
        finally:
            (self.folder / "pwfile").unlink(missing_ok=True)

    def kill(self) -> None:
        """Stop the server at once (immediate mode: every connection cut, recovery on the next start)."""
        run(self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"), "pg_ctl stop")

    def stop(self) -> None:
        """Stop the server (when running) and delete its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                run(self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"), "pg_ctl stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)



class ThrowawayMosquitto(Throwaway):
    """A Mosquitto broker on 127.0.0.1:port, persistence off. users: {name: password} to require a login (no
    anonymous clients then). kill() stops it at once; start() again on the same port."""

    def __init__(self, port: int = 0, users: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="edgepipe-mosquitto-"))
        self.conf = self.folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")  # root would switch to the mosquitto user, who cannot read this folder
        if users:
            passwords = self.folder / "passwords"
            passwords.touch(mode=0o600)
            for name, password in users.items():
                run(["mosquitto_passwd", "-b", str(passwords), name, password], "mosquitto_passwd")
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> ThrowawayMosquitto:
        """Start the broker; returns once it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise UserError("mosquitto was not found: install Debian's mosquitto package "
                            "(apt-get install --no-install-recommends mosquitto)")
        with open(self.folder / "broker.log", "ab") as log:
            self._proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=log, stderr=log,
                                          start_new_session=True)
        try:
            wait_for_port(self.port)
        except UserError:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """Stop the broker at once (SIGKILL: the clients' connections drop without a goodbye)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def stop(self) -> None:
        """Stop the broker (when running) and delete its folder."""
        try:
            if self._proc is not None:
                self._proc.terminate()
                self._proc.wait(timeout=10)
                self._proc = None
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

