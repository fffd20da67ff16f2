"""A listing that asks for them names the folders whose session metaData.json does not parse,
under the session they would make, with the library's one line; other listings skip them."""

from __future__ import annotations

from support import acquisition

from miniscope_core import list_sessions


def test_unreadable_acquisitions_are_listed_only_when_asked(tmp_path):
    raw = tmp_path / "raw"
    acquisition(raw / "good" / "11_34_45")
    acquisition(raw / "mixed" / "11_34_45")
    acquisition(raw / "mixed" / "12_00_00", minutes=30)
    acquisition(raw / "broken" / "11_34_45")
    (raw / "broken" / "11_34_45" / "metaData.json").write_text('{"animalName": ')
    (raw / "mixed" / "12_00_00" / "metaData.json").write_text("[]")
    assert sorted(list_sessions(raw, skip_unreadable=True)) == ["good", "mixed"]
    listed = list_sessions(raw, with_unreadable=True)
    assert sorted(listed) == ["broken", "good", "mixed"]
    broken, mixed = listed["broken"], listed["mixed"]
    assert broken.acquisitions == () and broken.unreadable == (raw / "broken" / "11_34_45",)
    assert broken.refusal() == (
        f"{raw / 'broken' / '11_34_45' / 'metaData.json'}: is not valid JSON: "
        "Expecting value at line 1"
    )
    assert [a.name for a in mixed.acquisitions] == ["11_34_45"]
    assert mixed.refusal().endswith("12_00_00/metaData.json: does not hold a JSON object")
    assert listed["good"].refusal() == ""
    (raw / "broken" / "11_34_45" / "metaData.json").write_text("{}")
    assert broken.refusal() == ""  # fixed since the listing
