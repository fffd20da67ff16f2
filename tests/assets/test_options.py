"""Each conversion option is declared once (miniscope_core.options); every front end agrees."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from miniscope_core import LAB_OPTIONS, OPTIONS, RUN_CONFIG_OPTIONS, ConversionOptions
from miniscope_core.cli import _parser as nwb_parser
from miniscope_core.options import given_options

pytest.importorskip("dagster")
from miniscope_assets.cli import _choices  # noqa: E402
from miniscope_assets.cli import _parser as dagster_parser  # noqa: E402
from miniscope_assets.resources import ConversionConfig  # noqa: E402
from miniscope_assets.settings import CONVERSION_SETTINGS, MiniscopeSettings  # noqa: E402


def _command(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions}


def test_every_field_of_conversion_options_is_declared_with_a_flag_and_help():
    assert set(OPTIONS) == {f.name for f in fields(ConversionOptions)} | {"dandi_layout"}
    defaults = ConversionOptions()
    for field in fields(ConversionOptions):
        option = OPTIONS[field.name]
        assert option.default == getattr(defaults, field.name)
        assert option.flag.startswith("--") and option.help.endswith(".")


def test_miniscope_nwb_convert_has_every_option_as_declared():
    flags = _flags(_command(nwb_parser(), "convert"))
    for name, option in OPTIONS.items():
        assert option.flag in flags[name].option_strings, name
        assert (flags[name].help, flags[name].default) == (option.help, option.default), name


def test_backfill_has_every_run_config_option_unset_by_default():
    flags = _flags(_command(dagster_parser(), "backfill"))
    assert set(RUN_CONFIG_OPTIONS) == set(LAB_OPTIONS) | {"stub"}
    for name in RUN_CONFIG_OPTIONS:
        option = OPTIONS[name]
        assert option.flag in flags[name].option_strings, name
        assert (flags[name].help, flags[name].default) == (option.help, None), name
    assert "metadata" in flags


def test_settings_and_run_config_take_defaults_and_meanings_from_the_declaration():
    assert set(CONVERSION_SETTINGS) | {"dandi_layout"} == set(LAB_OPTIONS)
    config = ConversionConfig.model_fields
    for name in LAB_OPTIONS:
        setting = MiniscopeSettings.model_fields[name]
        assert (setting.default, setting.description) == (OPTIONS[name].default, OPTIONS[name].help)
        assert config[name].default is None and OPTIONS[name].help in config[name].description
    assert config["stub"].description == OPTIONS["stub"].help


def test_flags_become_the_options_they_declare(tmp_path):
    sync = tmp_path / "pairs.csv"
    sync.write_text("local_time,reference_time\n0,10\n100,110.5\n")
    argv = ["convert", "s", "-o", "x.nwb", "--per-acquisition", "--deflate-engine", "zlib",
            "--compression-level", "6", "--no-verify", "--sync", str(sync), "--workers", "3",
            "--start-offset", "2.5", "--backend", "hdf5", "--stub"]  # fmt: skip
    args = nwb_parser().parse_args(argv)
    options = ConversionOptions(**given_options(args, [f.name for f in fields(ConversionOptions)]))
    assert (options.per_acquisition, options.deflate_engine, options.compression_level) == (
        True, "zlib", 6,
    )  # fmt: skip
    assert (options.verify, options.workers, options.start_offset, options.stub) == (
        False, 3, 2.5, True,
    )  # fmt: skip
    assert options.alignment is not None and options.alignment.apply([100.0])[0] == 110.5


def test_backfill_flags_become_run_config_and_leave_the_rest_unset(tmp_path):
    metadata = tmp_path / "m.yaml"
    metadata.write_text("NWBFile:\n  session_start_time: 2024-01-15T10:00:00-05:00\n")
    args = dagster_parser().parse_args(
        ["backfill", "--all", "--deflate-engine", "zlib", "--strict", "--metadata", str(metadata)]
    )
    config = _choices(args)
    assert config.choices() == {"strict": True, "deflate_engine": "zlib"}
    assert config.metadata == {"NWBFile": {"session_start_time": "2024-01-15T10:00:00-05:00"}}
