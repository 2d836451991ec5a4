"""Where a command's failure becomes one line and an exit code, whatever raised it.

Our own UserErrors keep their line and code; Interrupted (SIGINT, SIGTERM) or KeyboardInterrupt
anywhere in the chain ends as 130 or 143. What Spark, the JVM, the Python workers and the OS
throw is read through: the Python exception chain, the Java cause chain a Py4J error carries,
and the text of a Python worker's traceback inside it. Each family gets its exit code
(errors.py) and a line that says what happened and what to do; the full trace goes to the run
log (run_log.py), which the line names when the trace says more than the line.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fruits_p8.errors import (
    EnvironmentProblem,
    InputError,
    StorageError,
    UsageError,
    UserError,
)

INTERNAL = 1


@dataclass(frozen=True)
class Where:
    """What the command works on, to say which side of it failed."""

    input: str | None = None
    output: str | None = None


@dataclass(frozen=True)
class Failure:
    """The outcome: the message of the one line, its exit code, and whether the log's trace
    says more than the line (then the line names the log)."""

    message: str
    exit_code: int
    traced: bool = True

    def line(self, log_path: object | None) -> str:
        suffix = f" (full trace: {log_path})" if self.traced and log_path else ""
        return f"fruits-p8: error: {self.message}{suffix}"


@dataclass
class Evidence:
    """A failure as text: the Python chain, the Java causes, the Python workers' errors."""

    chain: list[BaseException]
    layers: list[tuple[str, str]] = field(default_factory=list)  # (class name, message)
    text: str = ""

    def find(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        return pattern.search(self.text)


def describe(exc: BaseException, where: Where) -> Failure:
    """The Failure that `exc` (raised by a command) stands for."""
    chain = python_chain(exc)
    interrupt = next((e for e in chain if isinstance(e, KeyboardInterrupt)), None)
    if interrupt is not None:
        return interrupted(interrupt)
    if isinstance(exc, UserError):
        return Failure(str(exc), exc.exit_code, traced=_has_cause(exc))
    evidence = gather(chain)
    for rule in RULES:
        failure = rule(evidence, where)
        if failure is not None:
            return failure
    name, message = evidence.layers[-1] if evidence.layers else (type(exc).__name__, str(exc))
    return Failure(f"internal error ({_short(name)}: {brief(message)}); please report it "
                   "with the log", INTERNAL)


def interrupted(exc: KeyboardInterrupt) -> Failure:
    signum = getattr(exc, "signum", 2)
    name = {2: "SIGINT", 15: "SIGTERM"}.get(signum, f"signal {signum}")
    return Failure(f"interrupted ({name}): the run stopped and released the output; an "
                   "output it had not committed was not replaced: run the command again",
                   128 + signum)


def python_chain(exc: BaseException) -> list[BaseException]:
    """`exc` and what it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__)
    return chain


def java_chain(throwable: object, depth: int = 16) -> list[tuple[str, str]]:
    """(class name, message) of a Java exception and its causes, while the JVM answers."""
    layers: list[tuple[str, str]] = []
    try:
        while throwable is not None and len(layers) < depth:
            layers.append((str(throwable.getClass().getName()),
                           str(throwable.getMessage() or "")))
            throwable = throwable.getCause()
    except Exception:  # the JVM has gone: what was read is what there is
        pass
    return layers


# The last error line of a Python traceback, as a worker's appears inside a Java message.
_WORKER_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)\w*): (.*)$", re.M)


def gather(chain: list[BaseException]) -> Evidence:
    """The layers of a Python chain: each exception, the Java exceptions a Py4J error (or
    PySpark's translation of one) carries, and the errors of Python workers in their text."""
    evidence = Evidence(chain)
    for exc in chain:
        evidence.layers.append((f"{type(exc).__module__}.{type(exc).__name__}", _text(exc)))
        origin = getattr(exc, "java_exception", None)
        if origin is None:
            origin = getattr(exc, "_origin", None)  # pyspark's CapturedException
        if origin is not None:
            evidence.layers.extend(java_chain(origin))
    evidence.text = "\n".join(f"{name}: {message}" for name, message in evidence.layers)
    evidence.layers.extend(_WORKER_ERROR.findall(evidence.text))
    return evidence


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a Py4J error asks the JVM for its text, and the JVM may be gone
        return type(exc).__name__


def _has_cause(exc: BaseException) -> bool:
    return exc.__cause__ is not None or (
        exc.__context__ is not None and not exc.__suppress_context__)


_PACKAGE = re.compile(r"\b(?:[a-z_$][\w$]*\.)+([A-Z][\w$]*)")


def _short(name: str) -> str:
    return _PACKAGE.sub(r"\1", name)


def brief(text: str, limit: int = 240) -> str:
    """One line of a message, without Java or Python package paths in class names."""
    for raw in text.splitlines():
        line = _short(raw.strip())
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return "no message"


def _under(path: str | None, root: str | None) -> bool:
    if not path or not root:
        return False
    plain = re.sub(r"^file:(//)?", "", path)
    top = re.sub(r"^file:(//)?", "", root).rstrip("/")
    return plain == top or plain.startswith(top + "/")


# Rules, in order: the first that recognises the failure describes it -----------------------

_NO_SPACE = re.compile(r"No space left on device|\[Errno 28\]|Disk quota exceeded|"
                       r"\[Errno 122\]")
_NO_SPACE_AT = re.compile(r"(?:No space left on device|Disk quota exceeded): '([^'\n]+)'")
_NO_MEMORY = re.compile(r"OutOfMemoryError(?:: (.*))?|\bMemoryError\b|Cannot allocate memory")
_S3 = re.compile(r"botocore\.exceptions\.(\w+): (.*)|(?:org\.apache\.hadoop\.fs\.s3a|"
                 r"software\.amazon\.awssdk|com\.amazonaws)\.[\w.$]+: (.*)")
_DENIED = re.compile(r"Permission denied|AccessDeniedException")
_DENIED_AT = re.compile(r"(?:AccessDeniedException: |\[Errno 13\] Permission denied: ')"
                        r"([^'\n]+?)(?:: Permission denied)?(?:'|$)", re.M)
_MISSING = re.compile(r"(?:Path does not exist: |FileNotFoundException: |No such file or "
                      r"directory: ')([^'\n ]+)")
_JVM_GONE = re.compile(r"Py4JNetworkError|Answer from Java side is empty|Error while "
                       r"(?:sending|receiving)|JAVA_GATEWAY_EXITED")
_WORKER_CRASH = re.compile(r"Python worker exited unexpectedly(?: \(crashed\))?")
_SETTING = re.compile(r"IllegalArgumentException: (.*\bspark\.[\w.]+.*)")


def _os_error(evidence: Evidence, where: Where) -> Failure | None:
    """An OSError raised in this process: its line is all there is to say."""
    exc = evidence.chain[0]
    if not isinstance(exc, OSError) or exc.errno is None or not (
            exc.filename or exc.errno in (errno.ENOSPC, errno.EDQUOT)):
        return None
    target = f": {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _no_space(str(exc.filename) if exc.filename else None, where, traced=False)
    if exc.errno == errno.EACCES and _under(str(exc.filename or ""), where.input):
        return Failure(f"cannot read {exc.filename}: permission denied; give this user read "
                       "access to the input, or leave that folder out", InputError.exit_code,
                       traced=False)
    return Failure(f"{exc.strerror or exc}{target}", StorageError.exit_code, traced=False)


def _no_space(path: str | None, where: Where, traced: bool = True) -> Failure:
    place = path or where.output or "the output"
    return Failure(f"no space left on the device holding {place}: free some space there, or "
                   "write --output to another disk (Spark's scratch folder, spark.local.dir, "
                   "default /tmp, needs room too); the output was not replaced",
                   StorageError.exit_code, traced)


def _full_disk(evidence: Evidence, where: Where) -> Failure | None:
    if evidence.find(_NO_SPACE) is None:
        return None
    at = evidence.find(_NO_SPACE_AT)
    return _no_space(at.group(1) if at else None, where)


def _memory(evidence: Evidence, where: Where) -> Failure | None:
    match = evidence.find(_NO_MEMORY)
    if match is None:
        return None
    return Failure(f"out of memory ({brief(match.group(0))}): give Spark more with --conf "
                   "spark.driver.memory=8g, or lower --batch-size or --threads-per-task",
                   EnvironmentProblem.exit_code)


def _storage(evidence: Evidence, where: Where) -> Failure | None:
    from fruits_p8.io.paths import Location
    from fruits_p8.io.s3 import S3Settings, storage_error, storage_error_text

    s3_uri = next((u for u in (where.input, where.output) if u and Location.parse(u).is_s3),
                  None)
    raised = _python_botocore(evidence)
    if raised is not None:
        error = storage_error(raised, s3_uri or "S3", S3Settings())
        return Failure(str(error), error.exit_code)
    match = evidence.find(_S3)
    if match is None:
        return None
    name = match.group(1) or "S3 client error"
    message = match.group(2) if match.group(1) else match.group(3)
    error = storage_error_text(name, message, s3_uri or "S3")
    return Failure(str(error), error.exit_code)


def _python_botocore(evidence: Evidence) -> BaseException | None:
    return next((e for e in evidence.chain
                 if type(e).__module__.startswith(("botocore", "boto3", "s3transfer"))), None)


def _denied(evidence: Evidence, where: Where) -> Failure | None:
    if evidence.find(_DENIED) is None:
        return None
    at = evidence.find(_DENIED_AT)
    path = at.group(1) if at else None
    if _under(path, where.input) or (path is None and where.input):
        return Failure(f"cannot read {path or where.input}: permission denied; give this user "
                       "read access to the input, or leave that folder out",
                       InputError.exit_code)
    return Failure(f"permission denied: {path or 'a file the run needs'}; check who may write "
                   "the output's folder", StorageError.exit_code)


def _missing(evidence: Evidence, where: Where) -> Failure | None:
    match = evidence.find(_MISSING)
    if match is None:
        return None
    path = match.group(1)
    if _under(path, where.input):
        return Failure(f"{path} went missing while the run read it: run again once the input "
                       "stays put", InputError.exit_code)
    return Failure(f"{path} went missing during the run: was it removed by someone else? run "
                   "again", StorageError.exit_code)


def _jvm_gone(evidence: Evidence, where: Where) -> Failure | None:
    if evidence.find(_JVM_GONE) is None:
        return None
    return Failure("Spark's JVM stopped while the run needed it (out of memory, or killed?): "
                   "see the log; more memory: --conf spark.driver.memory=8g",
                   EnvironmentProblem.exit_code)


def _worker_crash(evidence: Evidence, where: Where) -> Failure | None:
    if evidence.find(_WORKER_CRASH) is None:
        return None
    return Failure("a Spark Python worker crashed (out of memory, or killed?): lower "
                   "--batch-size or --threads-per-task, or give it more memory",
                   EnvironmentProblem.exit_code)


def _setting(evidence: Evidence, where: Where) -> Failure | None:
    match = evidence.find(_SETTING)
    if match is None:
        return None
    return Failure(f"Spark refused a setting: {brief(match.group(1))}; check --conf",
                   UsageError.exit_code)


RULES: tuple[Callable[[Evidence, Where], Failure | None], ...] = (
    _os_error, _full_disk, _memory, _storage, _denied, _missing, _jvm_gone, _worker_crash,
    _setting,
)
