"""Generate a Rasa 3.6 project from our nlu.yml, train it once (cached by content hash) and serve it on loopback.

Runs in the project's virtualenv; Rasa itself runs from the separate Python 3.10 virtualenv that
``tools/rasa/setup.sh`` builds, always as a subprocess.

    python -m tools.rasa.project train  [--nlu FILE] [--domain FILE] [--epochs N]
    python -m tools.rasa.project serve  [--nlu FILE] [--domain FILE] [--port N]   # `make rasa`
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from domain.errors import FrontdeskError
from nlu.rasa_domain import RasaDomain, domain_for_nlu, dump_domain, load_domain
from nlu.rasa_yaml import NluData, dump_nlu, read_nlu

RASA_VERSION = "3.6.21"
SETUP_SCRIPT = Path(__file__).resolve().parent / "setup.sh"

# Rasa 3.6's default NLU pipeline (rasa/engine/recipes/config_files/default_config.yml) without the parts
# that do not apply to intent classification from nlu.yml: ResponseSelector (no retrieval intents) and
# FallbackClassifier (our backend applies its own confidence threshold and sees the raw DIET ranking).
CONFIG_TEMPLATE = """\
recipe: default.v1
assistant_id: frontdesk-{assistant}
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    constrain_similarities: true
  - name: EntitySynonymMapper
policies: []
"""


class RasaSetupError(RuntimeError):
    """The Rasa virtualenv is missing, or training or serving failed (the message says where the log is)."""


@dataclass(frozen=True)
class RasaInstall:
    """The Rasa home: ``venv/`` (setup.sh), ``projects/<hash>/`` (generated), ``models/``, ``logs/``."""

    home: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RasaInstall:
        """``$FRONTDESK_RASA_HOME``, default ``~/.cache/frontdesk/rasa-3.6.21`` (as in setup.sh)."""
        default = Path.home() / ".cache" / "frontdesk" / f"rasa-{RASA_VERSION}"
        return cls(Path(env.get("FRONTDESK_RASA_HOME") or default))

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def rasa(self) -> Path:
        """The ``rasa`` executable."""
        return self.venv / "bin" / "rasa"

    @property
    def ready(self) -> bool:
        """True when setup.sh finished (its stamp exists) and the executable is there."""
        return (self.venv / f".frontdesk-rasa-{RASA_VERSION}").is_file() and os.access(self.rasa, os.X_OK)

    def require(self) -> None:
        """Raises RasaSetupError with the fix when the virtualenv is not built."""
        if not self.ready:
            raise RasaSetupError(f"no Rasa {RASA_VERSION} virtualenv in {self.venv}: run {SETUP_SCRIPT} "
                                 "(or `make rasa`); set FRONTDESK_RASA_HOME to use another location")


@dataclass(frozen=True)
class TrainedModel:
    """A trained model file; ``seconds`` is the training time, or None when it came from the cache."""

    path: Path
    key: str
    seconds: float | None


def rasa_env(install: RasaInstall) -> dict[str, str]:
    """The environment of a Rasa subprocess: telemetry off, nothing of our virtualenv leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{install.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONWARNINGS"] = "ignore"
    env["PYTHONUNBUFFERED"] = "1"  # the log file shows progress as it happens
    return env


def project_files(nlu: NluData, base_domain: RasaDomain | None, epochs: int) -> dict[str, str]:
    """The three files Rasa needs: ``config.yml``, ``domain.yml``, ``data/nlu.yml`` (relative path -> text)."""
    nlu_text = dump_nlu(nlu)
    domain_text = dump_domain(domain_for_nlu(nlu, base_domain))
    assistant = hashlib.sha256(nlu_text.encode()).hexdigest()[:8]
    return {"config.yml": CONFIG_TEMPLATE.format(epochs=epochs, assistant=assistant),
            "domain.yml": domain_text, "data/nlu.yml": nlu_text}


def project_key(files: Mapping[str, str]) -> str:
    """A content hash of the generated project (and the Rasa version): the model cache key."""
    digest = hashlib.sha256(RASA_VERSION.encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:16]


def write_project(files: Mapping[str, str], folder: Path) -> None:
    """Write the generated files under ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def train(install: RasaInstall, nlu: NluData, base_domain: RasaDomain | None = None, epochs: int = 100,
          echo: bool = False, workdir: Path | None = None) -> TrainedModel:
    """Train an NLU model for this data, or return the cached one for identical generated files.

    Args:
        install: the Rasa home.
        nlu: the training data (our reader's view of it, written back as Rasa YAML).
        base_domain: a domain whose responses and entity declarations are carried over.
        epochs: DIET epochs (Rasa's default is 100).
        echo: stream Rasa's output to this process's stderr as well as the log file.
        workdir: where the generated project is written (default ``<home>/projects/<key>``).

    Raises:
        RasaSetupError: no virtualenv, or ``rasa train nlu`` failed (the log file is named).
    """
    install.require()
    files = project_files(nlu, base_domain, epochs)
    key = project_key(files)
    model = install.home / "models" / f"nlu-{key}.tar.gz"
    with _locked(install.home / "locks" / f"train-{key}.lock"):
        if model.is_file():
            return TrainedModel(model, key, None)
        project = workdir or install.home / "projects" / key
        write_project(files, project)
        log_path = install.home / "logs" / f"train-{key}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix="train-", dir=install.home))
        command = [str(install.rasa), "train", "nlu", "--config", "config.yml", "--nlu", "data/nlu.yml",
                   "--domain", "domain.yml", "--out", str(out), "--fixed-model-name", f"nlu-{key}"]
        start = time.perf_counter()
        try:
            with log_path.open("w") as log:
                code = _run(command, project, install, log, echo)
            seconds = time.perf_counter() - start
            built = out / f"nlu-{key}.tar.gz"
            if code != 0 or not built.is_file():
                raise RasaSetupError(f"rasa train nlu failed (exit {code}); see {log_path}")
            model.parent.mkdir(parents=True, exist_ok=True)
            os.replace(built, model)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        return TrainedModel(model, key, seconds)


def _run(command: list[str], cwd: Path, install: RasaInstall, log: TextIO, echo: bool) -> int:
    with subprocess.Popen(command, cwd=cwd, env=rasa_env(install), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if echo:
                sys.stderr.write(line)
        return proc.wait()


def serve_command(install: RasaInstall, model: Path, port: int, host: str = "127.0.0.1") -> list[str]:
    """``rasa run`` with the HTTP API on loopback only."""
    return [str(install.rasa), "run", "--enable-api", "-i", host, "--port", str(port), "-m", str(model)]


def start_server(install: RasaInstall, model: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``rasa run`` in the background (its own process group), output to ``log_path``."""
    install.require()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(serve_command(install, model, port), cwd=install.home, env=rasa_env(install),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 180.0) -> float:
    """Poll ``GET /status`` until a model is loaded; returns the seconds waited.

    Raises:
        RasaSetupError: the process exited, or the timeout passed.
    """
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=2.0, trust_env=False) as client:
        while True:
            if proc is not None and proc.poll() is not None:
                raise RasaSetupError(f"rasa run exited with code {proc.returncode} before it was ready")
            try:
                response = client.get("/status")
                body = response.json() if response.status_code == 200 else {}
                if isinstance(body, dict) and (body.get("model_id") or body.get("model_file")):
                    return time.perf_counter() - start
            except (httpx.HTTPError, ValueError):
                pass
            if time.perf_counter() - start > timeout:
                raise RasaSetupError(f"Rasa at {url} was not ready after {timeout:.0f} s")
            time.sleep(0.5)


def stop_server(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the server, SIGKILL it after ``grace`` seconds, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _read_inputs(nlu_path: Path, domain_path: Path | None) -> tuple[NluData, RasaDomain | None]:
    domain = load_domain(domain_path) if domain_path and domain_path.is_file() else None
    return read_nlu(nlu_path), domain


def main(argv: list[str] | None = None) -> int:
    """CLI: ``train`` prints the model path; ``serve`` trains if needed, then runs Rasa in the foreground."""
    from settings import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m tools.rasa.project", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "serve"])
    parser.add_argument("--nlu", type=Path, default=Path(settings.nlu.training_data))
    parser.add_argument("--domain", type=Path, default=Path(settings.nlu.domain_file))
    parser.add_argument("--epochs", type=int, default=100)
    port = httpx.URL(settings.rasa.url).port or 5005
    parser.add_argument("--port", type=int, default=port, help=f"default: the port of rasa.url ({port})")
    args = parser.parse_args(argv)
    install = RasaInstall.from_env()
    try:
        nlu, domain = _read_inputs(args.nlu, args.domain)
        print(f"training Rasa {RASA_VERSION} NLU ({len(nlu.intents)} intents) from {args.nlu} ...", file=sys.stderr)
        trained = train(install, nlu, domain, args.epochs, echo=False)
    except (RasaSetupError, FrontdeskError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    took = "cached" if trained.seconds is None else f"trained in {trained.seconds:.0f} s"
    print(f"model {trained.path} ({took})", file=sys.stderr)
    if args.command == "train":
        print(trained.path)
        return 0
    command = serve_command(install, trained.path, args.port)
    print(f"serving on http://127.0.0.1:{args.port} (ready after about a minute); set FRONTDESK_RASA__ENABLED=true "
          f"and FRONTDESK_RASA__URL=http://127.0.0.1:{args.port} for the bot", file=sys.stderr)
    os.chdir(install.home)
    os.execve(command[0], command, rasa_env(install))
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
