"""Nothing the tool writes lands inside a recording it reads; output errors are one line.

Every refusal is checked three ways: exit code 2 (or the error, for the API) with a one-line
message naming the output and the recording, every raw file byte-identical afterwards, and no
new path (hidden ones included) anywhere in the recording's tree.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import dagster as dg
import pytest
from support import acquisition, read_nwb

from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.settings import MiniscopeSettings, SettingsError
from miniscope_core import ConversionOptions, convert_session, discover
from miniscope_core.cli import main
from miniscope_core.daq.explicit import session_from_files
from miniscope_core.outputs.atomic import OutputError
from miniscope_core.outputs.guard import OutputInsideInputError
from miniscope_core.pipeline import convert as convert_module
from miniscope_core.pipeline.dandi import dandi_output

ADVICE = "write outside the recording"


def snapshot(*roots: Path) -> dict[str, str]:
    """Every path under `roots` (hidden ones too, links not followed) and what it holds: a
    file's SHA-256, a link's target, `dir` for a folder."""
    found: dict[str, str] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder, name)
                if path.is_symlink():
                    found[str(path)] = f"-> {os.readlink(path)}"
                elif path.is_dir():
                    found[str(path)] = "dir"
                else:
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    """`tmp_path/coll/{s1,s2}/acq` with `s1/acq/Miniscope/...`: two tiny sessions."""
    acquisition(tmp_path / "coll" / "s1" / "acq")
    acquisition(tmp_path / "coll" / "s2" / "acq", animal="m02")
    return tmp_path / "coll"


@pytest.fixture
def session(collection: Path) -> Path:
    return collection / "s1"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], *trees: Path) -> str:
    """Run the CLI, expect exit 2 and one line on stderr, and the trees untouched; the line."""
    before = snapshot(*trees)
    assert main([*argv, "--quiet"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert snapshot(*trees) == before
    return err


RAW_FILES = [
    "acq/Miniscope/0.avi",
    "acq/Miniscope/metaData.json",
    "acq/Miniscope/timeStamps.csv",
    "acq/Miniscope/headOrientation.csv",
    "acq/metaData.json",
    "acq/notes.csv",
]


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("raw", RAW_FILES)
def test_an_output_onto_a_raw_file_is_refused_and_overwrite_never_reaches_it(
    session, capsys, raw, overwrite
):
    target = session / raw
    flags = ["--overwrite"] if overwrite else []
    err = refused(["convert", str(session), "-o", str(target), *flags], capsys, session)
    assert err == (
        f"error: {target}: is a file of the session {session} (--overwrite never replaces an "
        f"input): {ADVICE}, not under {session}"
    )


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize(
    "where", ["acq/Miniscope/x.nwb", "acq/x.nwb", "x.nwb", "new/deeper/x.nwb", "acq/.x.nwb"]
)
def test_an_output_inside_a_recording_folder_is_refused(session, capsys, where, overwrite):
    target = session / where
    flags = ["--overwrite"] if overwrite else []
    err = refused(["convert", str(session), "-o", str(target), *flags], capsys, session)
    assert err == (
        f"error: {target}: is inside the session {session}, which the conversion reads: "
        f"{ADVICE}, not under {session}"
    )


def test_an_output_that_is_or_holds_the_recording_is_refused(session, collection, capsys):
    store = ["--backend", "zarr", "--overwrite"]
    err = refused(["convert", str(session), "-o", str(session), "--overwrite"], capsys, session)
    assert err.startswith(f"error: {session}: is the session {session}, which the conversion")
    # a Zarr store is a folder: with --overwrite it would be renamed aside and removed
    aside = collection.parent / "held.nwb.zarr"
    (collection.parent / "coll").rename(aside)
    moved = aside / "s1"
    err = refused(["convert", str(moved), "-o", str(aside), *store], capsys, aside)
    assert err == (
        f"error: {aside}: holds the session {moved}, which the conversion reads (--overwrite "
        f"would replace it): {ADVICE}: name a new file, not a folder above the recording"
    )


@pytest.mark.parametrize(
    ("given", "output_dir"),
    [
        ("s1", "s1"),
        ("s1", "s1/nwb"),
        ("s1", "s1/acq/Miniscope"),
        (".", "."),
        (".", "nwb"),
        (".", "s2/acq"),
    ],
    ids=["session", "new-folder-in-session", "device-folder", "collection", "in-collection",
         "in-a-session-of-the-collection"],
)  # fmt: skip
def test_an_output_dir_inside_the_input_is_refused(collection, capsys, given, output_dir):
    source, target = collection / given, collection / output_dir
    err = refused(["convert", str(source), "--output-dir", str(target)], capsys, collection)
    assert err.startswith(f"error: {os.path.abspath(target)}: is ")
    assert "which the conversion reads" in err and ADVICE in err


def test_the_collection_named_as_input_is_read_even_where_no_session_is(collection, capsys):
    err = refused(["convert", str(collection), "--output-dir", str(collection / "nwb")], capsys,
                  collection)  # fmt: skip
    assert err == (
        f"error: {collection / 'nwb'}: is inside the input folder {collection}, which the "
        f"conversion reads: {ADVICE}, not under {collection}"
    )


@pytest.mark.parametrize("mode", ["-o", "--output-dir"])
@pytest.mark.parametrize("work", ["work", "acq/work", "acq/Miniscope"])
def test_a_work_dir_inside_the_session_is_refused(session, tmp_path, capsys, mode, work):
    where = tmp_path / "out.nwb" if mode == "-o" else tmp_path / "out"
    argv = ["convert", str(session), mode, str(where), "--work-dir", str(session / work)]
    err = refused(argv, capsys, session)
    assert err.startswith(f"error: {session / work}: is inside the session {session}")
    assert not where.exists()


def test_chunk_files_cannot_land_in_the_session_from_a_work_dir_above_it(tmp_path, capsys):
    """A work folder holding the session is fine, unless a chunk file's path is inside it."""
    session = tmp_path / "s"
    acquisition(session / "s")  # named like the session: its chunks go to work/s/Miniscope
    argv = ["convert", str(session), "-o", str(tmp_path / "o.nwb"), "--work-dir", str(tmp_path)]
    err = refused(argv, capsys, session)
    assert err.startswith(f"error: {session / 'Miniscope' / '0.h5'}: is inside the session")


def test_an_output_reached_through_a_link_into_the_session_is_refused(session, tmp_path, capsys):
    link = tmp_path / "looks_elsewhere"
    link.symlink_to(session / "acq")
    trees = (session, tmp_path / "looks_elsewhere")
    err = refused(["convert", str(session), "-o", str(link / "x.nwb")], capsys, *trees)
    assert err.startswith(f"error: {link / 'x.nwb'}: is inside the session {session}")
    video = link / "Miniscope" / "0.avi"
    err = refused(["convert", str(session), "-o", str(video), "--overwrite"], capsys, *trees)
    assert err.startswith(f"error: {video}: is {session / 'acq/Miniscope/0.avi'}, a file of the")
    refused(["convert", str(session), "--output-dir", str(link)], capsys, *trees)
    refused(["convert", str(session), "-o", str(tmp_path / "o.nwb"), "--work-dir", str(link)],
            capsys, *trees)  # fmt: skip
    named = tmp_path / "o.nwb"  # an output that is itself a link onto a raw file
    named.symlink_to(session / "acq" / "Miniscope" / "timeStamps.csv")
    refused(["convert", str(session), "-o", str(named), "--overwrite"], capsys, *trees)
    assert named.is_symlink()


def test_a_linked_acquisition_s_target_is_read_and_so_never_written(tmp_path, capsys):
    """An acquisition on another disk, linked into the session: its real folder is protected."""
    elsewhere = acquisition(tmp_path / "other_disk" / "acq")
    session = tmp_path / "s"
    session.mkdir()
    (session / "acq").symlink_to(elsewhere, target_is_directory=True)
    assert [a.folder.name for a in discover(session).acquisitions] == ["acq"]
    trees = (session, elsewhere)
    for target, flags in [
        (elsewhere / "x.nwb", []),
        (elsewhere / "Miniscope" / "x.nwb", []),
        (elsewhere / "Miniscope" / "0.avi", ["--overwrite"]),
        (session / "acq" / "x.nwb", []),
    ]:
        err = refused(["convert", str(session), "-o", str(target), *flags], capsys, *trees)
        assert f"(really {elsewhere}" in err, err
    err = refused(["convert", str(session), "--output-dir", str(elsewhere / "nwb")], capsys,
                  *trees)  # fmt: skip
    assert f"(really {elsewhere})" in err and f"nor {elsewhere}" in err
    before = snapshot(*trees)
    out = tmp_path / "o.nwb"  # beside them, the link is followed and converted
    assert main(["convert", str(session), "-o", str(out), "--quiet"]) == 0
    assert snapshot(*trees) == before and out.is_file()


def test_the_api_refuses_before_reading_a_frame(session, tmp_path, monkeypatch):
    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("videos probed before the output was checked")

    monkeypatch.setattr(convert_module, "probe_videos", no_decoding)
    before = snapshot(session)
    for source in (session, discover(session), str(session / "acq")):
        for inside in (session / "acq" / "x.nwb", session / "acq" / "Miniscope" / "0.avi"):
            with pytest.raises(
                OutputInsideInputError, match=f"^{re.escape(str(inside))}: is "
            ) as caught:
                convert_session(source, inside, overwrite=True)
            assert isinstance(caught.value, OutputError) and "\n" not in str(caught.value)
        with pytest.raises(OutputInsideInputError, match="is inside the session"):
            convert_session(source, tmp_path / "o.nwb", work_dir=session / "acq" / "work")
    metadata = tmp_path / "subject.yaml"  # the metadata files named are inputs too
    metadata.write_text("Subject:\n  sex: M\n")
    with pytest.raises(OutputInsideInputError, match="a file the conversion reads"):
        convert_session(session, metadata, metadata_path=metadata, overwrite=True)
    assert snapshot(session) == before and metadata.read_text() == "Subject:\n  sex: M\n"


def test_explicit_files_and_their_configuration_folder_are_protected(session, tmp_path):
    device = session / "acq" / "Miniscope"
    loose = tmp_path / "videos"
    loose.mkdir()
    video = loose / "trial_0.avi"
    video.write_bytes((device / "0.avi").read_bytes())
    explicit = session_from_files([video], device / "metaData.json", device / "timeStamps.csv")
    before = snapshot(session, loose)
    start_time = session / "acq" / "metaData.json"  # read for the start time
    for target in (video, device / "timeStamps.csv", device / "x.nwb", start_time):
        with pytest.raises(OutputInsideInputError):
            convert_session(explicit, target, overwrite=True)
    with pytest.raises(OutputInsideInputError, match="holds"):
        convert_session(explicit, loose, overwrite=True)
    assert snapshot(session, loose) == before
    convert_session(explicit, loose / "beside.nwb")  # another name beside them cannot reach them
    assert video.read_bytes() == (device / "0.avi").read_bytes()


def test_a_dandiset_inside_the_session_is_refused_before_its_metadata(session, capsys):
    with pytest.raises(OutputInsideInputError, match="is inside the session"):
        dandi_output(discover(session), session / "dandiset", {}, ConversionOptions())
    argv = ["convert", str(session), "--output-dir", str(session / "dandiset"), "--dandi"]
    refused(argv, capsys, session)


@pytest.mark.parametrize("output", ["raw/nwb", "raw", "raw/", "raw/a/b/..", "link_into_raw"])
def test_dagster_settings_refuse_an_output_root_inside_the_raw_root(tmp_path, output):
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "link_into_raw").symlink_to(raw)
    environ = {"MINISCOPE_RAW_ROOT": str(raw), "MINISCOPE_OUTPUT_ROOT": f"{tmp_path}/{output}"}
    with pytest.raises(SettingsError) as caught:
        MiniscopeSettings.load(environ)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"MINISCOPE_OUTPUT_ROOT='{tmp_path}/{output}' is ")
    assert f"MINISCOPE_RAW_ROOT='{raw}': the raw root is only read" in message
    with pytest.raises(SettingsError, match="is only read"):
        MiniscopeStorage.from_env(raw_root=str(raw), output_root=f"{tmp_path}/{output}")
    by_hand = MiniscopeStorage(raw_root=str(raw), output_root=f"{tmp_path}/{output}")
    with pytest.raises(SettingsError, match=f"^output_root='{tmp_path}/{output}' is "):
        by_hand.setup_for_execution(dg.build_init_resource_context())


def test_dagster_settings_allow_a_raw_root_inside_the_output_root_and_siblings(tmp_path):
    for raw, output in [("data/raw", "data"), ("raw", "nwb"), ("raw", "raw_nwb")]:
        settings = MiniscopeSettings.load(
            {
                "MINISCOPE_RAW_ROOT": str(tmp_path / raw),
                "MINISCOPE_OUTPUT_ROOT": str(tmp_path / output),
            }
        )
        assert settings.output_root == tmp_path / output
        storage = MiniscopeStorage.from_settings(settings)
        storage.setup_for_execution(dg.build_init_resource_context())


def test_unwritable_outputs_are_one_line(session, tmp_path, capsys):
    file = tmp_path / "somefile.txt"
    file.write_text("not a folder")
    folder = tmp_path / "taken.nwb"
    folder.mkdir()
    cases = [
        (["-o", str(file / "x.nwb")], f"{file / 'x.nwb'}: cannot be written: {file} is a file"),
        (["-o", str(file / "a" / "x.nwb")], f"{file / 'a' / 'x.nwb'}: cannot be written: {file}"),
        (["--output-dir", str(file)], f"{file}: cannot be written: {file} is a file, not a"),
        (["--output-dir", str(file / "d")], f"{file / 'd'}: cannot be written: {file} is a"),
        (["-o", str(tmp_path / "o.nwb"), "--work-dir", str(file)], f"{file}: cannot be written"),
        (["--output-dir", str(tmp_path / "d"), "--work-dir", str(file / "w")], f"{file / 'w'}:"),
        (["-o", str(folder), "--overwrite"], f"{folder}: is a folder: name the file to write"),
    ]
    for flags, message in cases:
        before = snapshot(tmp_path)
        err = refused(["convert", str(session), *flags], capsys, session)
        assert err.startswith(f"error: {message}"), err
        assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_an_output_folder_without_write_permission_is_one_line(session, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for flags in (["-o", str(locked / "x.nwb")], ["--output-dir", str(locked / "d")]):
            err = refused(["convert", str(session), *flags], capsys, session)
            assert f"cannot be written: no permission to write in {locked}" in err
    finally:
        locked.chmod(0o755)


def test_dot_and_relative_paths_convert_from_inside_a_session_or_collection(
    collection, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    monkeypatch.chdir(collection / "s1")
    assert main(["convert", ".", "--output-dir", str(out), "--quiet"]) == 0
    assert (out / "s1.nwb").is_file()
    assert main(["convert", ".", "--output-dir", "..", "--quiet"]) == 0  # beside the session
    assert (collection / "s1.nwb").is_file()
    (collection / "s1.nwb").unlink()
    monkeypatch.chdir(collection / "s1" / "acq")
    assert main(["convert", "..", "-o", "../../../s1.nwb", "--quiet", "--overwrite"]) == 0
    assert main(["convert", ".", "-o", "../../../acq.nwb", "--quiet"]) == 0
    with read_nwb(tmp_path / "s1.nwb") as nwb:
        assert nwb.session_id == "s1"
    with read_nwb(tmp_path / "acq.nwb") as nwb:
        assert nwb.session_id == "acq"
    monkeypatch.chdir(collection)
    assert main(["convert", ".", "--output-dir", "../all", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "s1.nwb",
        "s1.nwb.qc.html",
        "s2.nwb",
        "s2.nwb.qc.html",
    ]
    capsys.readouterr()
    before = snapshot(collection)
    assert main(["convert", ".", "--output-dir", ".", "--quiet"]) == 2
    assert main(["convert", "s1", "-o", "s1/x.nwb", "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        f"error: {collection}: is the input folder {collection}, which the conversion reads: "
        f"{ADVICE}, not under {collection}"
    )
    assert err[1].startswith(f"error: {collection / 's1' / 'x.nwb'}: is inside the session")
    assert snapshot(collection) == before
