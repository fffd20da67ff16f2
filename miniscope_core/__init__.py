"""Miniscope DAQ recordings to NWB: a streaming conversion library with no orchestration inside.

    from miniscope_core import convert_session
    convert_session("session_folder", "session.nwb", metadata_path="subject.yaml")

Everything an application (the command line, the Dagster layer) needs is imported from here;
the submodules are the library's own business.
"""

from .collection.discovery import (
    CollectionError,
    ListedSession,
    discover,
    find_sessions,
    list_sessions,
    session_names,
)
from .collection.keys import parsed_rel_path, partition_key
from .collection.status import FolderStatus, Signature, folder_status, folders_signature, signature
from .daq.explicit import session_from_files
from .daq.model import Device, Entry, Inventory, Session
from .encode.chunks import ChunkFile, VideoInfo
from .encode.deflate import ENGINES as DEFLATE_ENGINES
from .encode.deflate import Deflater
from .encode.preview import chunk_file_preview
from .errors import (
    FrameCountMismatch,
    InventoryWarning,
    MiniscopeFormatError,
    MiniscopeWarning,
    lab_messages,
    recorded_warnings,
)
from .metadata.layers import SESSION_METADATA_FILE, load_metadata_file, resolve_metadata
from .metadata.schema import did_you_mean
from .neuroconv import (
    ConverterPipe,
    ExternalVideoInterface,
    InternalVideoInterface,
    MiniscopeConverter,
    MiniscopeImagingInterface,
    NeuroConvUnsupported,
    VideoInterface,
)
from .nwb.backends.support import BACKENDS, ZarrUnavailableError, for_backend, stored_bytes
from .nwb.provenance import converter
from .options import (
    DANDI_LAYOUT,
    LAB_OPTIONS,
    OPTIONS,
    RUN_CONFIG_OPTIONS,
    STUB_FRAMES,
    ConversionOptions,
    Option,
    add_option_flags,
    given_options,
)
from .outputs.atomic import OutputError, atomic_output, write_bytes, write_csv, write_json
from .outputs.guard import OutputInsideInputError
from .pipeline.convert import ConversionResult, convert_session, stub_output
from .pipeline.dandi import claim_output, claimed_outputs, dandi_output, require_dandi_metadata
from .pipeline.stages import Assembly, assemble, encode_videos
from .quality.model import SessionQC, Thresholds
from .reports.outcome import FrameCount, Totals, frame_counts, miniscope_totals, recording_reports
from .reports.session import DeviceReport, SessionReport, describe_session, inspect_session
from .timing.recordings import Recording
from .timing.sync import SYNC_FILE, NewTimestamps, TimeAlignment, read_sync_file
from .verify.validate import (
    FileCheck,
    Verification,
    VerificationError,
    check_file,
    file_provenance,
    verify_nwb,
)

__all__ = [
    # sessions and collections
    "CollectionError",
    "Device",
    "ListedSession",
    "SESSION_METADATA_FILE",
    "Session",
    "discover",
    "find_sessions",
    "list_sessions",
    "parsed_rel_path",
    "partition_key",
    "session_from_files",
    "session_names",
    # what of a folder is converted: every entry used, or left out with why
    "Entry",
    "Inventory",
    "InventoryWarning",
    # folder state, for watching sessions as they are written
    "FolderStatus",
    "Signature",
    "folder_status",
    "folders_signature",
    "signature",
    # what a session holds, before converting: `inspect`, the assets, the checks
    "DeviceReport",
    "SessionReport",
    "describe_session",
    "inspect_session",
    # converting: in one call, or as staged steps (chunks -> assemble)
    "Assembly",
    "ChunkFile",
    "ConversionOptions",
    "DANDI_LAYOUT",
    "LAB_OPTIONS",
    "OPTIONS",
    "Option",
    "RUN_CONFIG_OPTIONS",
    "add_option_flags",
    "given_options",
    "ConversionResult",
    "Recording",
    "VideoInfo",
    "assemble",
    "chunk_file_preview",
    "convert_session",
    "encode_videos",
    "resolve_metadata",
    "load_metadata_file",
    "STUB_FRAMES",
    "stub_output",
    # times on another clock (NeuroConv's alignment operations)
    "NewTimestamps",
    "SYNC_FILE",
    "TimeAlignment",
    "read_sync_file",
    # DANDI-ready output
    "claim_output",
    "claimed_outputs",
    "dandi_output",
    "require_dandi_metadata",
    # checking a written file
    "FileCheck",
    "Verification",
    "VerificationError",
    "check_file",
    "converter",
    "file_provenance",
    "verify_nwb",
    "BACKENDS",
    "ZarrUnavailableError",
    "for_backend",
    "stored_bytes",
    # what a conversion wrote, for reports and UIs; the QC report's content and its limits
    "SessionQC",
    "Thresholds",
    "FrameCount",
    "Totals",
    "frame_counts",
    "miniscope_totals",
    "recording_reports",
    # NeuroConv's API over this library (see docs/neuroconv.md)
    "ConverterPipe",
    "ExternalVideoInterface",
    "InternalVideoInterface",
    "MiniscopeConverter",
    "MiniscopeImagingInterface",
    "NeuroConvUnsupported",
    "VideoInterface",
    # settings, outputs, errors
    "DEFLATE_ENGINES",
    "Deflater",
    "did_you_mean",
    "OutputError",
    "OutputInsideInputError",
    "atomic_output",
    "write_bytes",
    "write_csv",
    "write_json",
    "FrameCountMismatch",
    "MiniscopeFormatError",
    "MiniscopeWarning",
    "lab_messages",
    "recorded_warnings",
]
