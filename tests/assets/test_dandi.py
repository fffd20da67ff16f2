"""`convert --dandi`: files named as `dandi organize` names them, DANDI's metadata demanded before
any decoding, and `dandi validate` (the dandi package, extra `[dandi]`) passing on the result.

`dandi validate` runs offline: it only asks the internet whether a newer dandi exists, which
DANDI_NO_ET=1 turns off; nwbinspector's DANDI checks and the layout checks are local.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from support import SMALL_CAMERA, TINY, read_nwb

from miniscope_core.cli import main
from miniscope_core.pipeline.dandi import dandi_label
from miniscope_core.testing.synthetic import DEFAULT_START, write_session

SCOPE = replace(TINY, n_frames=10, frames_per_file=5)
CAMERA = replace(SMALL_CAMERA, n_frames=8, frames_per_file=4, gaps={})
DANDI_SUBJECT = "Subject:\n  species: Mus musculus\n  sex: F\n  age: P90D\n"
DANDISET_YAML = "identifier: DANDI:000123\nname: Miniscope test\ndescription: Synthetic data.\n"


def _dandi() -> str:
    """The `dandi` command; missing, the test skips locally and fails in CI (extra [dandi])."""
    found = shutil.which("dandi", path=str(Path(sys.executable).parent)) or shutil.which("dandi")
    if found is None:
        reason = "dandi is not installed (pip install -e '.[dandi]')"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}; CI must install it", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Animal `m_01` (an id DANDI must rewrite) with three sessions: one with a behaviour camera,
    one without, one whose camera recorded timestamps but no video (no image series, so no
    `image` in its name), as the DAQ lays them out (`<animal>/<date>/<time>/<device>`)."""
    root = tmp_path_factory.mktemp("raw")
    animal = root / "m_01"
    write_session(animal / "2024_01_15", 2, SCOPE, [CAMERA])
    write_session(animal / "2024_01_16", 1, SCOPE, [], first_start=DEFAULT_START + timedelta(1))
    write_session(
        animal / "2024_01_17", 1, SCOPE, [CAMERA], first_start=DEFAULT_START + timedelta(2)
    )
    for video in (animal / "2024_01_17").glob("*/BehavCam*/*.avi"):
        video.unlink()
    for session in animal.iterdir():
        (session / "nwb_metadata.yaml").write_text(DANDI_SUBJECT)
        for meta in session.glob("*/metaData.json"):  # the DAQ's animalName, read as subject_id
            meta.write_text(meta.read_text().replace('"m01"', '"m_01"'))
    return root


def test_dandi_label_sanitised_as_dandi_does() -> None:
    assert dandi_label("m_01.a b/c") == "m-01-a-b-c"
    organize = pytest.importorskip("dandi.organize")
    for value in ("m_01.a b/c", "2024_01_15", "x:y;z@w%", "ok-1"):
        assert dandi_label(value) == organize._sanitize_value(value, "subject_id")


def test_missing_dandi_metadata_is_one_line_before_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = tmp_path / "raw" / "m01" / "2024_01_15"
    write_session(session, 1, SCOPE, [])
    (session / "nwb_metadata.yaml").write_text("Subject:\n  species: Mus musculus\n")
    out = tmp_path / "dandiset"
    code = main(["convert", str(session), "--output-dir", str(out), "--dandi", "--quiet"])
    error = capsys.readouterr().err.strip()
    assert code == 1  # a collection's failed session; the others would go on
    assert error.count("\n") == 0
    assert error.startswith(f"error: {session}: DANDI requires Subject.sex (e.g. 'F'), ")
    assert "Subject.age or Subject.date_of_birth (e.g. 'P90D')" in error
    assert "species" not in error.split("requires")[1].split(":")[0]
    assert "nwb_metadata.yaml" in error and "--metadata" in error
    assert not out.exists() or not any(out.rglob("*.nwb*"))


def test_dandi_needs_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(tmp_path), "-o", str(tmp_path / "x.nwb"), "--dandi"]) == 2
    assert "--dandi names the files: use --output-dir" in capsys.readouterr().err


def _converted(raw: Path, out: Path, *flags: str) -> list[str]:
    assert main(["convert", str(raw), "--output-dir", str(out), "--quiet", *flags]) == 0
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nwb"))


def test_names_are_dandi_organize_names(raw: Path, tmp_path: Path) -> None:
    ours = _converted(raw, tmp_path / "dandiset", "--dandi")
    assert ours == [
        "sub-m-01/sub-m-01_ses-2024-01-15_image+ophys.nwb",
        "sub-m-01/sub-m-01_ses-2024-01-16_ophys.nwb",
        "sub-m-01/sub-m-01_ses-2024-01-17_ophys.nwb",
    ]
    # dandi organize's own naming of the same sessions converted under plain names
    metadata_nwb = pytest.importorskip("dandi.metadata.nwb")
    organize = pytest.importorskip("dandi.organize")
    plain = tmp_path / "plain"
    _converted(raw, plain)
    records = [{**metadata_nwb.get_metadata(p), "path": str(p)} for p in plain.glob("*.nwb")]
    organized = organize.create_unique_filenames_from_metadata(records)
    assert sorted(r["dandi_path"] for r in organized) == ours


def test_dandi_validate_passes(raw: Path, tmp_path: Path) -> None:
    dandi = _dandi()
    dandiset = tmp_path / "dandiset"
    dandiset.mkdir()
    (dandiset / "dandiset.yaml").write_text(DANDISET_YAML)
    _converted(raw, dandiset, "--dandi", "--embed-cameras")
    env = {**os.environ, "DANDI_NO_ET": "1"}
    done = subprocess.run(
        [dandi, "validate", str(dandiset)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No errors found" in done.stdout + done.stderr
    # the same check fails on a file named otherwise: it can fail
    shutil.copy(next(dandiset.rglob("*.nwb")), dandiset / "sub-m-01" / "session.nwb")
    done = subprocess.run(
        [dandi, "validate", str(dandiset)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode != 0
    assert "DANDI.NON_DANDI_FILENAME" in done.stdout


def _materialise(
    tmp_path: Path, lab_metadata: str, folder: str = "m01", **config: object
) -> tuple[bool, str]:
    """The conversion assets of session `<folder>/2024_01_15` with MINISCOPE_DANDI_LAYOUT on (as
    the resource) and `config` as run config; (success, "<failed step>: <its message>")."""
    dg = pytest.importorskip("dagster")
    from miniscope_assets.assets import CONVERSION_ASSETS, conversion_run_config
    from miniscope_assets.partitions import raw_session
    from miniscope_assets.resources import ConversionConfig, MiniscopeStorage

    write_session(tmp_path / "raw" / folder / "2024_01_15", 1, SCOPE, [CAMERA])
    lab = tmp_path / "lab.yaml"
    lab.write_text(lab_metadata)
    storage = MiniscopeStorage(
        raw_root=str(tmp_path / "raw"),
        output_root=str(tmp_path / "out"),
        metadata_file=str(lab),
        dandi_layout=True,
    )
    key = f"{folder}__2024_01_15"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("sessions", [key])
        result = dg.materialize(
            [raw_session, *CONVERSION_ASSETS],
            selection=CONVERSION_ASSETS,
            partition_key=key,
            instance=instance,
            resources={"storage": storage},
            run_config=conversion_run_config(ConversionConfig(**config)),  # type: ignore[arg-type]
            raise_on_error=False,
        )
    failures = [e for e in result.all_events if e.is_step_failure]
    if not failures:
        return result.success, ""
    error = failures[0].step_failure_data.error
    return result.success, f"{failures[0].step_key}: {error.message if error else ''}"


@pytest.mark.parametrize("stub", [False, True])
def test_dagster_dandi_layout(tmp_path: Path, stub: bool) -> None:
    ok, _ = _materialise(tmp_path, DANDI_SUBJECT, neuroconv_names=True, stub=stub)
    assert ok
    (written,) = (tmp_path / "out").rglob("*.nwb")
    relative = written.relative_to(tmp_path / "out").as_posix()
    name = "sub-m01_ses-2024-01-15_image+ophys" + ("_stub" if stub else "")
    assert relative == f"dandiset/sub-m01/{name}.nwb"  # a stub never takes the file's name
    with read_nwb(written) as nwb:  # the run config's NeuroConv names
        assert "BehavCamImageSeries" in nwb.acquisition


def test_dagster_keeps_a_dandi_name_to_the_first_session_that_took_it(tmp_path: Path) -> None:
    """Two rigs' folders of one animal and day: the second partition fails, the first's file
    stays as it was, and the first can still be converted again."""
    assert _materialise(tmp_path, DANDI_SUBJECT, "rig1")[0]
    (first,) = (tmp_path / "out").rglob("*.nwb")
    written = first.stat().st_mtime_ns
    ok, message = _materialise(tmp_path, DANDI_SUBJECT, "rig2")
    assert not ok
    assert message.startswith("nwb_file: ")
    assert (
        f"{first}: is the file of session rig1__2024_01_15, and session rig2__2024_01_15 has the "
        "same subject_id and session_id: give one of them another session_id"
    ) in message
    assert list((tmp_path / "out").rglob("*.nwb")) == [first]
    assert first.stat().st_mtime_ns == written
    assert _materialise(tmp_path, DANDI_SUBJECT, "rig1")[0]


def test_dagster_dandi_layout_fails_the_first_asset_without_the_metadata(tmp_path: Path) -> None:
    ok, message = _materialise(tmp_path, "Subject:\n  species: Mus musculus\n")
    assert not ok
    assert message.startswith("acquisition_metadata: ")
    assert "DANDI requires Subject.sex (e.g. 'F'), Subject.age or Subject.date_of_birth" in message
    assert not list((tmp_path / "out").rglob("*.nwb"))


def test_two_sessions_with_one_dandi_name_are_not_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two rigs' folders of one animal and day: the second is refused, the first kept."""
    for rig in ("rig1", "rig2"):
        session = tmp_path / "raw" / rig / "2024_01_15"
        write_session(session, 1, SCOPE, [])
        (session / "nwb_metadata.yaml").write_text(DANDI_SUBJECT)
    out = tmp_path / "dandiset"
    code = main(["convert", str(tmp_path / "raw"), "--output-dir", str(out), "--dandi", "--quiet"])
    assert code == 1
    first = out / "sub-m01" / "sub-m01_ses-2024-01-15_ophys.nwb"
    assert sorted(out.rglob("*.nwb")) == [first]
    error = capsys.readouterr().err.strip()
    assert error == (
        f"error: {tmp_path / 'raw' / 'rig2' / '2024_01_15'}: would be written to {first} like "
        f"{tmp_path / 'raw' / 'rig1' / '2024_01_15'} (same subject_id and session_id): give one "
        "of them its own NWBFile.session_id"
    )


def test_a_stub_never_takes_the_dandi_name(tmp_path: Path) -> None:
    session = tmp_path / "raw" / "m01" / "2024_01_15"
    write_session(session, 1, SCOPE, [])
    (session / "nwb_metadata.yaml").write_text(DANDI_SUBJECT)
    out = tmp_path / "dandiset"
    assert main(["convert", str(session), "--output-dir", str(out), "--dandi", "--stub"]) == 0
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.nwb")] == [
        "sub-m01/sub-m01_ses-2024-01-15_ophys_stub.nwb"
    ]
