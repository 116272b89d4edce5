"""The emulator's static tables: actions, states, filters, output formats, error codes.

Transcribed from the seed document (`seeds/000_03e6dea79bfb0e18.txt`, sections "Requests" and "StartJob"),
independently of the client's enums: the emulator must not share the client's reading of the document.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

ACTIONS: tuple[str, ...] = (
    "ListMedia",
    "ListFilters",
    "ListOutputFormats",
    "UploadMedia",
    "StartJob",
    "GetProgress",
    "DeleteMedia",
)

MEDIA_STATES: tuple[str, ...] = (
    "MediaUploading",
    "MediaQueued",
    "MediaInformation",
    "MediaScenes",
    "MediaAnalyze",
    "MediaCompleted",
)
JOB_STATES: tuple[str, ...] = (
    "JobQueued",
    "JobQueuedColorization",
    "JobPreProcessing",
    "JobColorizing",
    "JobPostProcessing",
    "JobRunning",
    "JobUploading",
    "JobCompleted",
)
# GetProgress: the states "will appear in ascending order as progress is made".
STATES: tuple[str, ...] = MEDIA_STATES + JOB_STATES


@attrs.frozen
class OutputFormat:
    """One output format of ListOutputFormats, with the container the emulator labels it with."""

    name: str
    long_name: str
    extension: str
    content_type: str


OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat("MxfDnxHrHqx", "MXF (DNxHR HQX)", ".mxf", "application/mxf"),
    OutputFormat("MxfDnxHr444", "MXF (DNxHR 444)", ".mxf", "application/mxf"),
    OutputFormat("MovProRes422Hq", "MOV (ProRes 422 HQ)", ".mov", "video/quicktime"),
    OutputFormat("MovProRes4444", "MOV (ProRes 4444)", ".mov", "video/quicktime"),
    OutputFormat("Mp4H264", "MP4 (H.264)", ".mp4", "video/mp4"),
    OutputFormat("Mp4Hevc", "MP4 (HEVC)", ".mp4", "video/mp4"),
)

_MOVIES = "https://www.recuromedia.com/movies/"

# name -> (description, example_url). The document's stray quote ("AdaptiveSharpness", NaturalSpeed")
# is page noise: these are two filters (seeds/README.md).
FILTERS: Mapping[str, tuple[str, str]] = {
    "LightDustAndScratches": (
        "Removes light dust and fine scratches.",
        f"{_MOVIES}Dust%20and%20Noise.mp4",
    ),
    "MediumDustAndScratches": (
        "Removes stray hairs, retouch scratches and repairs damaged frames.",
        f"{_MOVIES}Dust%20and%20Noise.mp4",
    ),
    "HeavyDustAndScratches": (
        "Repairs heavily damaged film with large scratches, blotches and dirt.",
        f"{_MOVIES}Dust%20and%20Noise.mp4",
    ),
    "Noise": ("Reduces film grain and video noise.", f"{_MOVIES}Dust%20and%20Noise.mp4"),
    "ReGrain": ("Adds a fine, natural film grain after restoration.", f"{_MOVIES}ReGrain.mp4"),
    "ColorBalance": (
        "Evens the white balance and removes discolourations often found in aged film.",
        f"{_MOVIES}Color%20and%20Contrast.mp4",
    ),
    "ColorSaturation": (
        "Restores faded colour saturation.",
        f"{_MOVIES}Color%20and%20Contrast.mp4",
    ),
    "ContrastExpansion": (
        "Expands the contrast of faded footage.",
        f"{_MOVIES}Color%20and%20Contrast.mp4",
    ),
    "Colorize": ("Colorizes black-and-white footage.", f"{_MOVIES}Colorize.mp4"),
    "ImageStabilization": ("Removes camera shake and gate weave.", f"{_MOVIES}Stabilization.mp4"),
    "ReduceFlicker": ("Evens out brightness flicker between frames.", f"{_MOVIES}Flicker.mp4"),
    "ContentStabilization": (
        "Stabilizes the content of shaky scenes.",
        f"{_MOVIES}Stabilization.mp4",
    ),
    "VerticalScratches": (
        "Removes long vertical scratches running through many frames.",
        f"{_MOVIES}Scratches.mp4",
    ),
    "RepairDeinterlace": ("Repairs interlacing artefacts.", f"{_MOVIES}Deinterlace.mp4"),
    "HighFrameRate": (
        "Interpolates frames for a higher frame rate.",
        f"{_MOVIES}HighFrameRate.mp4",
    ),
    "BadSceneChanges": ("Repairs damaged frames at scene changes.", f"{_MOVIES}SceneChanges.mp4"),
    "ColorCasting": ("Removes colour casts.", f"{_MOVIES}Color%20and%20Contrast.mp4"),
    "AdaptiveSharpness": ("Sharpens detail adaptively.", f"{_MOVIES}Sharpness.mp4"),
    "NaturalSpeed": (
        "Plays footage shot at silent-film speeds at a natural speed.",
        f"{_MOVIES}NaturalSpeed.mp4",
    ),
    "NormalizeVolume": ("Normalizes the volume of the audio track.", f"{_MOVIES}Audio.mp4"),
    "ReduceNoise": ("Reduces hiss and noise in the audio track.", f"{_MOVIES}Audio.mp4"),
    "IncreaseClarity": (
        "Increases the clarity of speech in the audio track.",
        f"{_MOVIES}Audio.mp4",
    ),
}

# StartJob, output_scaling: 1080 for HD and 2160 for 4K.
SCALINGS: tuple[str, ...] = ("1080", "2160")

# UploadMedia, original_file_url: the supported containers.
CONTAINERS: tuple[str, ...] = ("MKV", "MOV", "MP3", "MP4", "MPG", "MXF", "WAV")

_ACTIONS_BY_KEY = {name.casefold(): name for name in ACTIONS}
_FORMATS_BY_KEY = {fmt.name.casefold(): fmt for fmt in OUTPUT_FORMATS}
_FILTERS_BY_KEY = {name.casefold(): name for name in FILTERS}
_STATES_BY_KEY = {name.casefold(): name for name in STATES}


def canonical_action(value: str) -> str | None:
    """Return the action's canonical name (matched case-insensitively), or None."""
    return _ACTIONS_BY_KEY.get(value.casefold())


def output_format(value: str) -> OutputFormat | None:
    """Return the output format named `value` (case-insensitively), or None."""
    return _FORMATS_BY_KEY.get(value.casefold())


def format_named(name: str) -> OutputFormat:
    """Return the output format with this canonical name (KeyError if there is none)."""
    return _FORMATS_BY_KEY[name.casefold()]


def canonical_filter(value: str) -> str | None:
    """Return the filter's canonical name (matched case-insensitively), or None."""
    return _FILTERS_BY_KEY.get(value.casefold())


def canonical_state(value: str) -> str | None:
    """Return the state's canonical name (matched case-insensitively), or None."""
    return _STATES_BY_KEY.get(value.casefold())


class ApiError(Exception):
    """An API refusal, answered as `{error_code, error_message}` with `status` (400 or 500).

    Attributes:
        status: the HTTP status code of the answer.
        code: the `error_code` string.
        message: the `error_message` string.
        headers: extra response headers (Retry-After on a 429 refusal).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int = 400,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
