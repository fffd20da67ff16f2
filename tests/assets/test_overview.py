"""The lab overview: every folder under the raw root with its state (converted, stale, failed,
waiting, held back, refused), the asset that lists them, and its page, followed link by link and
drawn by a real browser."""

from __future__ import annotations

import json
import shutil
import struct
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import unquote

import dagster as dg
import pytest
from support import acquisition, http_get, screenshot, served

from miniscope_assets import sensors
from miniscope_assets.assets import CONVERSION_ASSETS
from miniscope_assets.definitions import defs
from miniscope_assets.overview import (
    folder_states,
    lab_overview,
    overview_after_failure,
    render_page,
)
from miniscope_assets.partitions import RAW_ROOT, raw_session
from miniscope_assets.resources import MiniscopeStorage
from miniscope_assets.scan import list_sessions
from miniscope_assets.sensors import Cursor, session_sensor


def _tick(instance: dg.DagsterInstance, storage: MiniscopeStorage) -> dg.SensorResult:
    """One sensor tick, applied to the instance as the daemon applies it."""
    context = dg.build_sensor_context(instance=instance, resources={"storage": storage})
    result = session_sensor(context)
    assert isinstance(result, dg.SensorResult)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def _convert(instance: dg.DagsterInstance, storage: MiniscopeStorage, key: str) -> bool:
    result = dg.materialize(
        [raw_session, *CONVERSION_ASSETS], selection=CONVERSION_ASSETS, partition_key=key,
        instance=instance, resources={"storage": storage}, raise_on_error=False,
    )  # fmt: skip
    return result.success


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """A raw root with a folder in every state, ticked and converted as the daemon would."""
    tmp = tmp_path_factory.mktemp("lab")
    raw, out = tmp / "raw", tmp / "out"
    storage = MiniscopeStorage(raw_root=str(raw), output_root=str(out), settle_seconds=0)
    for name in ("good", "stale", "failed", "broken_session", "broken_device", "half_copied"):
        acquisition(raw / name / "11_34_45", animal=f"m_{name}")
    (raw / "broken_session" / "11_34_45" / "metaData.json").write_text('{"animalName": ')
    (raw / "broken_device" / "11_34_45" / "Miniscope" / "metaData.json").write_text("{")
    with (raw / "half_copied" / "11_34_45" / "Miniscope" / "0.avi").open("r+b") as avi:
        avi.seek(4)  # the RIFF size the DAQ (or a finished copy) fills in
        avi.write(struct.pack("<I", 0xFFFFFFFF))
    (out / "failed").mkdir(parents=True)
    (out / "failed" / "choices.json").write_text("{not json")
    with dg.instance_for_test() as instance:
        _tick(instance, storage)
        ready = _tick(instance, storage)
        acquisition(raw / "just_copied" / "11_34_45")  # after the ticks: seen by none yet
        _tick(instance, storage)  # ... now seen once: waiting
        converted = {r.partition_key: _convert(instance, storage, str(r.partition_key))
                     for r in ready.run_requests}  # fmt: skip
        assert converted == {"good": True, "stale": True, "failed": False}
        (out / "stale" / "choices.json").write_text(json.dumps({"per_acquisition": True}))
        yield instance, storage


def _by_folder(states) -> dict[str, tuple[str, str]]:
    return {state.folder: (state.state, state.why) for state in states}


def test_every_folder_has_its_state_and_why(lab):
    instance, storage = lab
    states = _by_folder(folder_states(storage, instance))
    assert list(states) == ["broken_device", "broken_session", "failed", "good", "half_copied",
                            "just_copied", "stale"]  # fmt: skip
    assert states["good"] == ("converted", "")
    state, why = states["broken_session"]
    assert state == "refused" and "broken_session/11_34_45/metaData.json: is not valid JSON" in why
    state, why = states["broken_device"]
    assert state == "held back" and "Miniscope/metaData.json: is not valid JSON" in why
    assert "converted as it is at" in why and "MINISCOPE_STALE_SECONDS" in why
    state, why = states["half_copied"]
    assert state == "held back" and "has unfinished videos: 0.avi" in why
    state, why = states["just_copied"]
    assert state == "waiting" and why.startswith("files changed since the last look")
    assert "looked at again at the sensor's next tick (every" in why
    state, why = states["failed"]
    assert state == "failed" and "acquisition_metadata:" in why and "choices.json" in why
    assert "Traceback" not in why and "dagster." not in why
    state, why = states["stale"]
    assert state == "stale" and "per_acquisition=False (now True)" in why


def test_without_an_instance_the_files_and_the_sensor_state_still_tell(lab):
    _, storage = lab
    states = _by_folder(folder_states(storage))
    assert states["good"][0] == "converted" and states["stale"][0] == "stale"
    assert states["failed"][0] == "not converted"  # the failure is in the instance
    assert states["broken_session"][0] == "refused" and states["half_copied"][0] == "held back"


def test_a_folder_the_sensor_has_not_seen_is_checked_here(lab, tmp_path):
    _, storage = lab
    elsewhere = storage.model_copy(update={"output_root": str(tmp_path / "out")})
    states = _by_folder(folder_states(elsewhere))  # no sensor state, no files, no instance
    assert states["half_copied"] == (
        "waiting", "half_copied/11_34_45/Miniscope has unfinished videos: 0.avi "
        "(not looked at by the sensor yet)",
    )  # fmt: skip
    assert states["good"][0] == "not converted" and states["broken_session"][0] == "refused"


def test_a_session_whose_folder_is_gone_is_listed(tmp_path):
    raw = tmp_path / "raw"
    storage = MiniscopeStorage(
        raw_root=str(raw), output_root=str(tmp_path / "out"), settle_seconds=0
    )
    acquisition(raw / "kept" / "11_34_45")
    acquisition(raw / "moved" / "11_34_45")
    with dg.instance_for_test() as instance:
        _tick(instance, storage)
        assert len(_tick(instance, storage).run_requests) == 2  # handed over
        shutil.rmtree(raw / "moved")
        _tick(instance, storage)  # observed gone
        states = _by_folder(folder_states(storage, instance))
    assert states["moved"] == ("gone", "its folder is gone; partition and outputs kept")
    assert states["kept"][0] == "not converted"


def test_the_raw_root_asset_shows_the_folders_held_back_within_a_tick(lab):
    instance, storage = lab
    latest = instance.get_latest_materialization_event(RAW_ROOT)
    assert latest is not None and latest.asset_materialization is not None
    shown = latest.asset_materialization.metadata
    rows = {row.data["folder"]: row.data for row in shown["folders"].value.records}
    assert rows.keys() == {"broken_device", "broken_session", "half_copied", "just_copied"}
    assert rows["half_copied"]["state"] == "held back" and shown["refused"].value == 1
    listed = list_sessions(storage.raw_path, with_unreadable=True)
    unchanged = sensors.waiting_event(instance, storage, listed, Cursor.load(storage, None))
    assert unchanged is None  # reported when it changes, not on every tick


def test_the_sensor_cursor_is_a_line_for_people(lab):
    _, storage = lab
    state = Cursor.load(storage, None)
    assert state.summary(6) == "6 folders: 2 held back, 1 settling"
    assert json.loads(storage.sensor_state_path.read_text())["pending"].keys() == {
        "broken_device", "half_copied", "just_copied"
    }  # fmt: skip


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value or "" for name, value in attrs if name in ("href", "src")]


def test_the_asset_writes_a_page_whose_links_resolve(lab):
    instance, storage = lab
    result = dg.materialize([lab_overview], instance=instance, resources={"storage": storage})
    (event,) = result.asset_materializations_for_node("lab_overview")
    shown = event.metadata
    page = storage.overview_path
    assert shown["page"].value == shown["dagster/uri"].value == page.resolve().as_uri()
    assert page.is_file()  # no reports_url: file:// links, as ever
    assert (shown["converted"].value, shown["failed"].value, shown["refused"].value) == (1, 1, 1)
    rows = {row.data["session"]: row.data for row in shown["sessions"].value.records}
    good = rows["good"]
    assert good["animal"] == "m_good" and good["date"].startswith("2021-")
    assert good["frames"] == 12 and good["dropped_percent"] == 0.0
    # no lab metadata file: DANDI's subject fields are missing, which nwb_valid fails
    assert good["checks"] == "5/6 passed; failed: nwb_valid"
    assert good["report"].endswith("good.nwb.qc.html")
    parsed = _Links()
    parsed.feed(page.read_text())
    assert "script" not in parsed.tags and len(parsed.links) == 4  # good and stale: report, file
    for link in parsed.links:
        assert not link.startswith(("/", "file:", "http")), link  # relative: the drive may move
        assert (page.parent / unquote(link)).exists(), link


def test_with_reports_url_the_pages_link_opens_over_http(tmp_path):
    """The output root served on 127.0.0.1 as a lab would: the asset's link to the page is an
    http URL the server answers with the page; the page still links relatively."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    acquisition(raw / "good" / "11_34_45")
    out.mkdir()
    with served(out) as url, dg.instance_for_test() as instance:
        storage = MiniscopeStorage(
            raw_root=str(raw), output_root=str(out), settle_seconds=0, reports_url=url
        )
        _tick(instance, storage)
        _tick(instance, storage)
        assert _convert(instance, storage, "good")
        result = dg.materialize([lab_overview], instance=instance, resources={"storage": storage})
        (event,) = result.asset_materializations_for_node("lab_overview")
        shown, page = event.metadata, storage.overview_path
        assert shown["page"].value == shown["dagster/uri"].value == url + "index.html"
        assert http_get(shown["page"].value) == (200, page.read_bytes())
        assert http_get(url + "good/good.nwb.qc.html")[0] == 200  # the page's own link
    (row,) = shown["sessions"].value.records  # the report read back beside its http link
    assert row.data["report"] == str(storage.session_dir("good") / "good.nwb.qc.html")
    assert 'href="good/good.nwb.qc.html"' in page.read_text()


def test_the_overview_follows_conversions_by_declarative_automation(lab, tmp_path):
    instance, storage = lab
    ticks: list[int] = []
    cursor = None

    def evaluate() -> None:
        nonlocal cursor
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        ticks.append(result.get_num_requested(lab_overview.key))

    evaluate()  # the first evaluation sees what is there already
    instance.report_runless_asset_event(dg.AssetMaterialization(RAW_ROOT))  # folders changed
    evaluate()
    evaluate()  # requested: handled
    choices = storage.session_dir("failed") / "choices.json"
    choices.unlink()
    assert _convert(instance, storage, "failed")  # a session converted
    evaluate()
    evaluate()
    assert ticks == [0, 1, 0, 1, 0]
    choices.write_text("{not json")
    assert not _convert(instance, storage, "failed")  # a conversion failed: no asset updated,
    (run,) = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=1)
    (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=overview_after_failure.name, dagster_instance=instance, dagster_run=run,
        dagster_event=failure.dagster_event,
    ).for_run_failure()  # fmt: skip
    request = overview_after_failure(context)  # so the failure sensor requests the overview
    assert isinstance(request, dg.RunRequest) and request.tags["miniscope/after_failed_run"]
    unwritable = MiniscopeStorage(raw_root=storage.raw_root, output_root=str(tmp_path / "a_file"))
    (tmp_path / "a_file").write_text("")
    broken = dg.materialize([lab_overview], resources={"storage": unwritable},
                            raise_on_error=False, instance=instance)  # fmt: skip
    own = instance.get_run_by_id(broken.run_id)
    assert own is not None and not broken.success
    (failure,) = instance.all_logs(own.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name=overview_after_failure.name, dagster_instance=instance, dagster_run=own,
        dagster_event=failure.dagster_event,
    ).for_run_failure()  # fmt: skip
    assert isinstance(overview_after_failure(context), dg.SkipReason)  # no loop of its own


def test_names_are_escaped_and_an_empty_root_says_so(tmp_path):
    row = {"state": "refused", "session": "<b>x</b>", "folder": "a&b", "why": "<script>"}
    text = render_page([row], tmp_path, made=_NOW)
    assert "<script>" not in text and "&lt;b&gt;x&lt;/b&gt;" in text and "a&amp;b" in text
    assert "no session folder yet" in render_page([], tmp_path, made=_NOW)


_NOW = datetime(2026, 12, 2, tzinfo=UTC)


def test_a_real_browser_draws_the_page(lab, tmp_path):
    instance, storage = lab
    dg.materialize([lab_overview], instance=instance, resources={"storage": storage})
    uri = storage.overview_path.as_uri()
    pixels = screenshot(uri, tmp_path / "overview.png", 1400, 700)[..., :3]
    red = (pixels[..., 0] > 0.95) & (pixels[..., 1] < 0.9) & (pixels[..., 2] < 0.9)
    green = (pixels[..., 1] > 0.9) & (pixels[..., 0] < 0.9)
    assert red.sum() > 200 and green.sum() > 200  # the failed and converted badges are drawn
    assert (pixels < 0.3).all(axis=2).mean() > 0.005  # and the text
