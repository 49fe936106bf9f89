"""What every command module shares: the handler type, settings flags and progress lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from errors import EXIT_OK, UsageError
from streams.settings import Settings, SettingsError

if TYPE_CHECKING:
    from models.runtime import NerModel

#: A command: parsed arguments and the effective settings in, exit code out. Failures are
#: raised as ``errors.NerstreamError`` subclasses; ``streams.cli.main`` turns them into codes.
Handler = Callable[[argparse.Namespace, Settings], int]
#: What ``add_subparsers`` returns; each command module adds its parsers to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

__all__ = [
    "COMMAND_SET",
    "EXIT_OK",
    "Handler",
    "Subparsers",
    "load_served_model",
    "model_flags",
    "progress",
    "set_flag",
    "setting_flag",
]


#: Where ``--set`` items given after the command go: argparse copies a command's values over
#: the top-level ones, so the two places need separate destinations.
COMMAND_SET = "command_set"


def set_flag(parser: argparse.ArgumentParser, dest: str) -> None:
    """``--set SECTION.FIELD=VALUE``: ``dest`` is ``set`` before the command, else
    :data:`COMMAND_SET`."""
    parser.add_argument(
        "--set",
        dest=dest,
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="override any setting (see `nerstream settings`); repeatable",
    )


def settings_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    """Flags that map onto settings fields (dest ``setting__section__field``) plus ``--set``
    (given before the command, then after it: the later one wins)."""
    overrides: dict[str, str | None] = {}
    for dest, value in vars(args).items():
        if dest.startswith("setting__") and value is not None:
            _, section, name = dest.split("__", 2)
            overrides[f"{section}.{name}"] = str(value)
    for item in [*(args.set or []), *(getattr(args, COMMAND_SET, None) or [])]:
        key, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    return overrides


def setting_flag(
    parser: argparse.ArgumentParser, flag: str, key: str, help_text: str, *aliases: str
) -> None:
    """A flag that sets the setting ``key`` (``section.field``); ``aliases`` are other spellings."""
    section, name = key.split(".")
    parser.add_argument(
        flag, *aliases, dest=f"setting__{section}__{name}", metavar="VALUE", help=help_text
    )


def model_flags(parser: argparse.ArgumentParser, *, threads: bool = True) -> None:
    """The model flags, the same for every command that loads a model (``--model`` is the old
    spelling of ``--model-dir``)."""
    setting_flag(
        parser, "--model-dir", "model.model_dir", "model directory (default: shipped)", "--model"
    )
    setting_flag(parser, "--provider", "model.provider", "auto, tensorrt, cuda or cpu")
    setting_flag(parser, "--precision", "model.precision", "auto, int8, fp32 or fp16")
    if threads:
        setting_flag(parser, "--threads", "model.threads", "ONNX Runtime intra-op threads")


def load_served_model(settings: Settings) -> NerModel:
    """The model a long-running server (worker, serve) serves. Its directory is configuration
    there: one that cannot be loaded refuses the start (exit 2)."""
    from models.manifest import ModelError
    from streams.model_loader import load_model

    try:
        return load_model(settings.model)
    except ModelError as exc:
        raise UsageError(f"cannot load the model: {exc}") from exc


def progress(message: str) -> None:
    """A progress or diagnostic line on stderr (stdout carries the command's results)."""
    print(message, file=sys.stderr, flush=True)
