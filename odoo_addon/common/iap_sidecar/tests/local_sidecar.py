"""A real iap-sidecar on loopback for tests: a throwaway SQLite database and the
binary's own CLI for services, credits, admin tokens and registration secrets.

The binary is ``IAP_SIDECAR_BIN``, else ``target/release/iap-sidecar``, else
``target/debug/iap-sidecar`` of the repository this addon sits in; :func:`find_binary`
answers None when none exists. Needs no Odoo.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import requests

SHOWN_ONCE = re.compile(r"store it now\): (\S+)")


def find_binary():
    """The sidecar binary to run, or None: ``IAP_SIDECAR_BIN``, else the repository's
    ``target/release/iap-sidecar``, else its ``target/debug/iap-sidecar`` (the README's
    order). A set ``IAP_SIDECAR_BIN`` that is not an executable is an error, not a miss."""
    configured = os.environ.get("IAP_SIDECAR_BIN")
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise RuntimeError(f"IAP_SIDECAR_BIN={configured} is not an executable file")
        return os.path.realpath(configured)
    # The real path: each series directory links to the one shared code tree.
    here = os.path.dirname(os.path.realpath(__file__))
    target = os.path.join(here, "..", "..", "..", "..", "target")
    for profile in ("release", "debug"):
        path = os.path.join(target, profile, "iap-sidecar")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    return None


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalSidecar:
    """``start()`` it, use ``url`` and the CLI helpers, then ``stop()`` it."""

    def __init__(self, binary):
        self.binary = binary
        self.workdir = tempfile.mkdtemp(prefix="iap-sidecar-test-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.workdir, "sidecar.log")
        self.process = None
        self.env = dict(
            os.environ,
            IAP_SIDECAR__DATABASE__URL=f"sqlite://{self.workdir}/sidecar.db",
            IAP_SIDECAR__HTTP__BIND=f"127.0.0.1:{self.port}",
            IAP_SIDECAR__HTTP__PUBLIC_URL=self.url,
            IAP_SIDECAR__LOG__LEVEL="warn",
            # The Odoo under test answers on loopback, which the sidecar refuses to call
            # unless told (a registration could otherwise probe its network).
            IAP_SIDECAR__ODOO__ALLOWED_HOSTS=os.environ.get(
                "IAP_SIDECAR__ODOO__ALLOWED_HOSTS", "127.0.0.1,localhost,::1"
            ),
        )

    def cli(self, *args):
        """Runs one CLI command on this sidecar's database; returns its standard output."""
        done = subprocess.run(
            [self.binary, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"iap-sidecar {' '.join(args)} failed: {done.stderr.strip()}"
            )
        return done.stdout

    def _shown_once(self, *args):
        found = SHOWN_ONCE.search(self.cli(*args))
        if not found:
            raise RuntimeError(f"iap-sidecar {' '.join(args)} printed no secret")
        return found.group(1)

    def add_service(self, name, label=None):
        """Registers a service; returns its provider key."""
        return self._shown_once("service", "add", name, "--label", label or name)

    def grant(self, token, service, amount, expires=None):
        args = ["credit", "grant", token, service, str(amount)]
        if expires:
            args += ["--expires", expires]
        self.cli(*args)

    def admin_token(self, name="tests"):
        return self._shown_once("admin-token", "create", name)

    def registration_secret(self, name="tests"):
        return self._shown_once("registration-secret", "create", name)

    def start(self, timeout=60):
        """Serves HTTP; returns once ``/health`` answers."""
        if self.process is None or self.process.poll() is not None:
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                    [self.binary, "serve"],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"iap-sidecar exited at start; see {self.log_path}")
            try:
                ready = requests.get(self.url + "/health", timeout=2).status_code == 200
            except requests.exceptions.RequestException:
                ready = False
            if ready:
                return self
            time.sleep(0.2)
        raise RuntimeError(
            f"iap-sidecar did not answer within {timeout} s; see {self.log_path}"
        )

    def stop(self):
        """Stops serving (the database stays, so ``start()`` resumes)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self):
        """Stops serving and removes the database."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
