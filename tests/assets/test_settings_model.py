"""One settings model: defaults once, environment over file, errors that name their source."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import PROJECT

from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.settings import (
    CONVERSION_SETTINGS,
    DEMO_DATA,
    MiniscopeSettings,
    SettingsError,
)
from miniscope_core import ConversionOptions

README = PROJECT / "README.md"


def test_conversion_defaults_are_the_libraries():
    library = ConversionOptions()
    defaults = MiniscopeSettings()
    assert defaults.conversion_options() == library
    for name in CONVERSION_SETTINGS:
        assert MiniscopeSettings.model_fields[name].default == getattr(library, name)


def test_environment_values_are_typed_and_the_old_names_still_work():
    settings = MiniscopeSettings.load(
        {
            "MINISCOPE_RAW_ROOT": "raw",
            "MINISCOPE_METADATA_FILE": "",
            "MINISCOPE_KEEP_CHUNKS": "no",
            "MINISCOPE_SETTLE_SECONDS": "0",
            "MINISCOPE_MAX_NEW_PER_TICK": "5",
            "MINISCOPE_SENSOR_INTERVAL": "1",
            "MINISCOPE_EMBED_CAMERAS": "true",
        }
    )
    assert settings.raw_root == Path("raw") and settings.metadata_file is None
    assert (settings.keep_chunks, settings.settle_seconds, settings.max_new_per_tick) == (
        False,
        0.0,
        5,
    )
    assert settings.sensor_interval_seconds == 1
    assert settings.conversion_options().embed_cameras
    both = {"MINISCOPE_SENSOR_INTERVAL": "1", "MINISCOPE_SENSOR_INTERVAL_SECONDS": "7"}
    assert MiniscopeSettings.load(both).sensor_interval_seconds == 7


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("settings.yaml", "settle_seconds: 5\nstrict: yes\ncompression_level: 3\n"),
        ("settings.toml", "settle_seconds = 5\nstrict = true\ncompression_level = 3\n"),
    ],
)
def test_a_settings_file_is_below_the_environment_and_overrides(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    environ = {"MINISCOPE_SETTINGS_FILE": str(path)}
    from_file = MiniscopeSettings.load(environ)
    assert (from_file.settle_seconds, from_file.strict, from_file.compression_level) == (5, True, 3)

    environ["MINISCOPE_SETTLE_SECONDS"] = "9"
    assert MiniscopeSettings.load(environ).settle_seconds == 9
    assert MiniscopeSettings.load(environ, settle_seconds=11, strict=None).settle_seconds == 11
    assert MiniscopeSettings.load(environ, strict=None).strict  # None: not given


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MINISCOPE_SETTLE_SECONDS": "soon"},
            "MINISCOPE_SETTLE_SECONDS='soon': expected a number of seconds, 0 or more",
        ),
        (
            {"MINISCOPE_KEEP_CHUNKS": "maybe"},
            "MINISCOPE_KEEP_CHUNKS='maybe': expected true or false",
        ),
        (
            {"MINISCOPE_SENSOR_INTERVAL": "0"},
            "MINISCOPE_SENSOR_INTERVAL='0': expected a whole number of seconds, 1 or more",
        ),
        (
            {"MINISCOPE_COMPRESSION_LEVEL": "7"},
            "MINISCOPE_COMPRESSION_LEVEL='7': isal levels are 0-3",
        ),
        (
            {"MINISCOPE_DEFLATE_ENGINE": "lz4"},
            "MINISCOPE_DEFLATE_ENGINE='lz4': expected one of isal",
        ),
        (
            {"MINISCOPE_EXECUTOR": "dask"},
            "MINISCOPE_EXECUTOR='dask': expected one of in_process, multiprocess, celery",
        ),
        (
            {"MINISCOPE_CELERY_REQUEUE_SECONDS": "0"},
            "MINISCOPE_CELERY_REQUEUE_SECONDS='0': expected a whole number of seconds, 1 or more",
        ),
        (
            {"MINISCOPE_REPORTS_URL": "file:///data/nwb"},
            "MINISCOPE_REPORTS_URL='file:///data/nwb': expected an http:// or https:// URL with "
            "a host",
        ),
        (
            {"MINISCOPE_REPORTS_URL": "127.0.0.1:8000"},
            "MINISCOPE_REPORTS_URL='127.0.0.1:8000': expected an http:// or https:// URL",
        ),
        (
            {"MINISCOPE_REPORTS_URL": "http://"},
            "MINISCOPE_REPORTS_URL='http://': expected an http:// or https:// URL",
        ),
        (
            {"MINISCOPE_REPORTS_URL": "http://lab:port/"},
            "MINISCOPE_REPORTS_URL='http://lab:port/': expected an http:// or https:// URL",
        ),
        (
            {"MINISCOPE_SETTLE_SECOND": "5"},
            "MINISCOPE_SETTLE_SECOND: not a setting; did you mean 'MINISCOPE_SETTLE_SECONDS'?",
        ),
        (
            {"MINISCOPE_SETTINGS_FILE": "lab.ini"},
            "MINISCOPE_SETTINGS_FILE='lab.ini': expected a .yaml, .yml or .toml file",
        ),
    ],
)
def test_a_bad_variable_is_named_with_its_value_in_one_line(environ, message):
    with pytest.raises(SettingsError) as error:
        MiniscopeSettings.load(environ)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_bad_file_value_names_the_file_and_key(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("stale_seconds: later\n")
    with pytest.raises(SettingsError, match=r"settings\.yaml: stale_seconds='later': expected a"):
        MiniscopeSettings.load({"MINISCOPE_SETTINGS_FILE": str(path)})
    path.write_text("stale_secs: 5\n")
    with pytest.raises(SettingsError, match=r"stale_secs: not a setting; did you mean 'stale_s"):
        MiniscopeSettings.load({"MINISCOPE_SETTINGS_FILE": str(path)})


def test_the_executor_and_its_celery_urls_come_from_the_environment():
    assert MiniscopeSettings().executor == "in_process"
    chosen = MiniscopeSettings.load(
        {
            "MINISCOPE_EXECUTOR": "celery",
            "MINISCOPE_CELERY_BROKER": "redis://head:6379/1",
            "MINISCOPE_CELERY_BACKEND": "redis://head:6379/2",
        }
    )
    assert (chosen.executor, chosen.celery_broker, chosen.celery_backend) == (
        "celery",
        "redis://head:6379/1",
        "redis://head:6379/2",
    )


def test_the_reports_url_ends_in_one_slash_and_links_below_the_output_root(tmp_path):
    assert MiniscopeSettings().reports_url is None
    for given in ("http://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000//"):
        served = MiniscopeSettings.load({"MINISCOPE_REPORTS_URL": given}).reports_url
        assert served == "http://127.0.0.1:8000/"
    assert MiniscopeSettings.load({"MINISCOPE_REPORTS_URL": ""}).reports_url is None
    lab = MiniscopeSettings.load(
        {"MINISCOPE_REPORTS_URL": "https://lab.example/nwb", "MINISCOPE_OUTPUT_ROOT": str(tmp_path)}
    )
    storage = MiniscopeStorage.from_settings(lab)
    assert storage.link(tmp_path / "a b" / "c#1.html") == "https://lab.example/nwb/a%20b/c%231.html"
    outside = tmp_path.parent / "elsewhere.html"
    assert storage.link(outside) == outside.as_uri()  # not served: its file:// URL
    unset = MiniscopeStorage.from_settings(MiniscopeSettings(output_root=tmp_path))
    assert unset.reports_url == "" and unset.link(tmp_path / "a b") == (tmp_path / "a b").as_uri()


def test_conversion_overrides_are_checked_like_settings():
    defaults = MiniscopeSettings()
    chosen = defaults.conversion_options(per_acquisition=True, compression_level=None)
    assert chosen == ConversionOptions(per_acquisition=True)
    zlib = defaults.conversion_options(deflate_engine="zlib", compression_level=9)
    assert (zlib.deflate_engine, zlib.compression_level) == ("zlib", 9)
    with pytest.raises(SettingsError, match="compression_level=9: isal levels are 0-3, not 9"):
        defaults.conversion_options(compression_level=9)


def _readme_row(name: str) -> str:
    """The README's row for one field, built from the model."""
    field = MiniscopeSettings.model_fields[name]
    default = field.default
    if isinstance(default, Path):
        shown = f"`{default.relative_to(DEMO_DATA.parent).as_posix()}`"
    elif default is None:
        shown = "none"
    else:
        shown = f"`{str(default).lower() if isinstance(default, bool) else default}`"
    variables = " or ".join(f"`{v}`" for v in MiniscopeSettings.variables(name))
    return f"| {variables} | {shown} | {field.description} |"


def test_the_readme_table_lists_every_setting_as_the_model_defines_it():
    lines = README.read_text(encoding="utf-8").splitlines()
    missing = [row for row in map(_readme_row, MiniscopeSettings.model_fields) if row not in lines]
    assert not missing, "README settings table is out of date:\n" + "\n".join(missing)
