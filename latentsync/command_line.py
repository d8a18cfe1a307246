"""The one command-line error policy of every entry point (inference, batch, app, training, data processing, eval).

    def main(argv=None) -> int:
        args = parser.parse_args(argv)          # a OneLineParser: option errors are one `error:` line, exit 2
        return run_cli(lambda: work(args), verbose=args.verbose)

- a user error (the `InputError` family, a missing file, a full disk, no permission) exits 2 with one
  `error:` line that names the input and what to do;
- anything else exits 1 with one line (`--verbose` adds the traceback);
- Ctrl-C exits 130 and SIGTERM 143, without a traceback, after every `with` / `finally` cleaned up;
- the console is quiet: third-party native log lines (mediapipe, TFLite, absl) and deprecation chatter are
  hidden unless `--verbose`.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import traceback
import warnings
from collections.abc import Callable

from latentsync.errors import OUT_OF_SPACE_ERRNOS, InputError, RunStopped, restore_signals, stop_on_signals

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGINT = 130
USER_ERRNOS = (*OUT_OF_SPACE_ERRNOS, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR)
USER_OS_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


class OneLineParser(argparse.ArgumentParser):
    """Option errors as one `error:` line (exit 2), like every other bad input."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see --help)\n")


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="tracebacks of internal errors, info logs and third-party native log lines")


def classify(exc: BaseException) -> int:
    """EXIT_BAD_INPUT for what the user can fix (input, set-up, space, permissions), else EXIT_INTERNAL."""
    if isinstance(exc, (InputError, *USER_OS_ERRORS)):
        return EXIT_BAD_INPUT
    if isinstance(exc, OSError) and exc.errno in USER_ERRNOS:
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def _os_error_text(exc: OSError) -> str:
    """`<what>: <path>` for an OSError that names a file (its str() repeats the errno)."""
    if exc.errno in OUT_OF_SPACE_ERRNOS:
        return (f"could not write {exc.filename or 'the output'}: the disk is full or a file-size limit was reached; "
                "free some space (or choose another output folder) and run again")
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def one_line(exc: BaseException) -> str:
    """The message of `exc` on one line; an internal error says so and points at --verbose."""
    text = _os_error_text(exc) if isinstance(exc, OSError) and not isinstance(exc, InputError) else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    if classify(exc) == EXIT_INTERNAL:
        return f"internal error ({type(exc).__name__}): {text} (run with --verbose for the traceback)"
    return text


def report(exc: BaseException, verbose: bool = False) -> int:
    """Print `exc` as one `error:` line (with the traceback first for an internal error under --verbose)."""
    code = classify(exc)
    if code == EXIT_INTERNAL and verbose:
        traceback.print_exception(exc)
    print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
    return code


def warn(message: str) -> None:
    """One `warning:` line on stderr (the run goes on)."""
    print(f"warning: {' '.join(message.split())}", file=sys.stderr, flush=True)


def quiet_console(verbose: bool, level: int = logging.WARNING, fmt: str = "%(levelname)s %(name)s: %(message)s"):
    """Hide third-party native log lines and Python warnings unless `verbose`; logging at `level`
    (INFO with `verbose`)."""
    if not verbose:
        from latentsync.utils.native_logs import filter_native_logs

        filter_native_logs()
        warnings.simplefilter("ignore")  # third-party deprecation chatter; --verbose shows it
    logging.basicConfig(level=logging.INFO if verbose else level, format=fmt)


def run_cli(body: Callable[[], int | None], verbose: bool = False) -> int:
    """Run an entry point's work under the policy; returns the exit code (body's own, 0 for None)."""
    previous = stop_on_signals()
    try:
        code = body()
        return EXIT_OK if code is None else int(code)
    except RunStopped as stop:
        print(f"error: {stop}; nothing partial was left behind", file=sys.stderr, flush=True)
        return stop.exit_code
    except KeyboardInterrupt:
        print("error: stopped by SIGINT; nothing partial was left behind", file=sys.stderr, flush=True)
        return EXIT_SIGINT
    except Exception as exc:  # noqa: BLE001 - the policy turns every failure into one line + an exit code
        return report(exc, verbose)
    finally:
        restore_signals(previous)


def training_cli(main, description: str, config_flag: str, default_config: str, example: str, argv=None) -> int:
    """Console-script entry of a trainer: `<config_flag> PATH [key=value ...]` -> `main(config)`, under the policy
    above: a bad config, override, file list or checkpoint is one `error:` line and exit 2, before any run folder
    is made."""
    from latentsync.training.settings import load_training_config

    parser = OneLineParser(description=description,
                           epilog=f"Extra arguments are key=value config overrides, e.g. {example}")
    parser.add_argument(config_flag, default=default_config)
    add_verbose_flag(parser)
    args, overrides = parser.parse_known_args(argv)
    unknown = [o for o in overrides if o.startswith("-")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    quiet_console(args.verbose, level=logging.INFO, fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def train() -> int:
        main(load_training_config(getattr(args, config_flag.lstrip("-")), overrides))
        return 0

    return run_cli(train, args.verbose)
