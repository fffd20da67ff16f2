"""A conversion with its QC report never imports matplotlib: in a fresh interpreter (this one
may have imported it for another test), watching every import, through the library's API."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, re, sys
    from importlib.abc import MetaPathFinder
    from pathlib import Path

    class Watch(MetaPathFinder):  # every attempt, even one whose ImportError is caught
        tried = []

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "matplotlib":
                self.tried.append(name)
            return None

    sys.meta_path.insert(0, Watch())
    from miniscope_core import ConversionOptions, convert_session
    from miniscope_core.testing.synthetic import CameraSpec, ScopeSpec, write_session

    root = Path(sys.argv[1])
    scope = ScopeSpec(n_frames=30, height=16, width=24, frames_per_file=12, dropped_frames={10: 2})
    camera = CameraSpec(n_frames=20, height=24, width=32, frames_per_file=10)
    write_session(root / "session", n_acquisitions=2, scope=scope, cameras=[camera])
    done = convert_session(root / "session", root / "s.nwb", ConversionOptions(report=True))
    page = done.report.read_text()
    print(json.dumps({
        "tried": Watch.tried,
        "loaded": sorted(m for m in sys.modules if m.partition(".")[0] == "matplotlib"),
        "plots": len(re.findall(r'<figure class="plot" role="img"', page)),
        "png": len(re.findall(r'src="data:image/png;base64,', page)),
        "jpeg": len(re.findall(r'src="data:image/jpeg;base64,', page)),
    }))
    """
)


def test_a_conversion_with_its_report_never_imports_matplotlib(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["tried"] == [] and seen["loaded"] == []
    # the report was made: brightness, motion, timing, head orientation; two projections; a
    # camera frame per acquisition
    assert (seen["plots"], seen["png"], seen["jpeg"]) == (4, 2, 2)
