"""Each command's options are declared once (keras_pix2pix.options): the flags and the Python functions agree."""

import argparse
import dataclasses
import inspect

import pytest

from keras_pix2pix import cli, evaluation, exports, importing, options, translation
from keras_pix2pix.config import Config

FUNCTIONS = {
    "predict": translation.predict,
    "evaluate": evaluation.evaluate,
    "export": exports.export,
    "import": importing.import_checkpoint,
}


def _command_parser(command):
    commands = next(action for action in cli.build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    return commands.choices[command]


def _flags(command):
    """The command's arguments, but --help and the command line's own --verbose."""
    return [action for action in _command_parser(command)._actions if action.dest not in ("help", "verbose")]


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_each_flag_default_is_the_python_functions_default(command):
    parameters = inspect.signature(FUNCTIONS[command]).parameters
    checked = 0
    for action in _flags(command):
        assert action.dest in parameters, f"{command} {action.option_strings or action.dest} has no Python argument"
        if action.required or not action.option_strings:
            continue  # the command line needs it: no default to share
        assert action.default == parameters[action.dest].default, (command, action.dest)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_every_option_has_its_flag(command):
    declared = [field.name for field in dataclasses.fields(options.COMMANDS[command])]
    assert [action.dest for action in _flags(command)] == declared


def test_fit_flags_are_configs_settings_and_configs_defaults_are_fits():
    fields = {field.name: field for field in dataclasses.fields(Config)}
    flags = [action for action in _flags("fit") if action.dest != "workdir"]
    assert sorted(action.dest for action in flags) == sorted(fields)
    # fit passes only the flags given: the others come from Config's declarations.
    assert all(action.default is argparse.SUPPRESS for action in flags)


def test_parsed_defaults_reach_the_functions_unchanged():
    arguments = cli.build_parser().parse_args(["predict", "--model", "run", "--output", "out", "a.png"])
    values = cli._options(arguments, "predict")
    assert values["inputs"] == ["a.png"] and values["output_dir"] == "out"
    assert values["sizing"] == "auto" and values["tile_overlap"] is None and values["max_pixels"] == 50_000_000
    arguments = cli.build_parser().parse_args(["export", "--model", "run", "--output", "out", "--format", "tflite"])
    assert cli._options(arguments, "export")["formats"] == ("tflite",)
