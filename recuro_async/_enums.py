"""The document's enumerations: processing states (ordered), filters and output formats.

Wire values are exactly the document's; matching is case-insensitive ("All requests are case insensitive
and all responses should also be considered to be case insensitive", seed: Overview).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self, TypeVar

__all__ = ["Filter", "InputContainer", "OutputFormat", "State"]


_E = TypeVar("_E", bound=StrEnum)


def _casefold_lookup(cls: type[_E], value: object) -> _E | None:
    if isinstance(value, str):
        folded = value.strip().casefold()
        for member in cls:
            if member.value.casefold() == folded:
                return member
    return None


class State(StrEnum):
    """A media file's processing state, ordered as the document lists them (GetProgress, -state).

    Comparisons follow that order (`State.MEDIA_COMPLETED < State.JOB_QUEUED`), not string order. A value the
    document does not list becomes `UNKNOWN`, which sorts before every known state: it proves no progress.
    """

    UNKNOWN = "Unknown"
    MEDIA_UPLOADING = "MediaUploading"
    MEDIA_QUEUED = "MediaQueued"
    MEDIA_INFORMATION = "MediaInformation"
    MEDIA_SCENES = "MediaScenes"
    MEDIA_ANALYZE = "MediaAnalyze"
    MEDIA_COMPLETED = "MediaCompleted"
    JOB_QUEUED = "JobQueued"
    JOB_QUEUED_COLORIZATION = "JobQueuedColorization"
    JOB_PRE_PROCESSING = "JobPreProcessing"
    JOB_COLORIZING = "JobColorizing"
    JOB_POST_PROCESSING = "JobPostProcessing"
    JOB_RUNNING = "JobRunning"
    JOB_UPLOADING = "JobUploading"
    JOB_COMPLETED = "JobCompleted"

    @classmethod
    def _missing_(cls, value: object) -> Self:
        return _casefold_lookup(cls, value) or cls.UNKNOWN

    @property
    def rank(self) -> int:
        """Position in the document's order; -1 for UNKNOWN."""
        return _RANKS[self]

    @property
    def phase(self) -> Literal["media", "job", "unknown"]:
        """`media` for the analysis states, `job` for the restoration states."""
        if self is State.UNKNOWN:
            return "unknown"
        return "media" if self.rank <= _RANKS[State.MEDIA_COMPLETED] else "job"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.rank >= other.rank

    __hash__ = StrEnum.__hash__


_RANKS: dict[State, int] = {state: index - 1 for index, state in enumerate(State)}


class Filter(StrEnum):
    """The 22 restoration filters of StartJob (`"AdaptiveSharpness", NaturalSpeed"` are two names)."""

    LIGHT_DUST_AND_SCRATCHES = "LightDustAndScratches"
    MEDIUM_DUST_AND_SCRATCHES = "MediumDustAndScratches"
    HEAVY_DUST_AND_SCRATCHES = "HeavyDustAndScratches"
    NOISE = "Noise"
    RE_GRAIN = "ReGrain"
    COLOR_BALANCE = "ColorBalance"
    COLOR_SATURATION = "ColorSaturation"
    CONTRAST_EXPANSION = "ContrastExpansion"
    COLORIZE = "Colorize"
    IMAGE_STABILIZATION = "ImageStabilization"
    REDUCE_FLICKER = "ReduceFlicker"
    CONTENT_STABILIZATION = "ContentStabilization"
    VERTICAL_SCRATCHES = "VerticalScratches"
    REPAIR_DEINTERLACE = "RepairDeinterlace"
    HIGH_FRAME_RATE = "HighFrameRate"
    BAD_SCENE_CHANGES = "BadSceneChanges"
    COLOR_CASTING = "ColorCasting"
    ADAPTIVE_SHARPNESS = "AdaptiveSharpness"
    NATURAL_SPEED = "NaturalSpeed"
    NORMALIZE_VOLUME = "NormalizeVolume"
    REDUCE_NOISE = "ReduceNoise"
    INCREASE_CLARITY = "IncreaseClarity"

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        return _casefold_lookup(cls, value)


class OutputFormat(StrEnum):
    """The six output formats of StartJob (-output_format)."""

    MXF_DNX_HR_HQX = "MxfDnxHrHqx"
    MXF_DNX_HR_444 = "MxfDnxHr444"
    MOV_PRO_RES_422_HQ = "MovProRes422Hq"
    MOV_PRO_RES_4444 = "MovProRes4444"
    MP4_H264 = "Mp4H264"
    MP4_HEVC = "Mp4Hevc"

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        return _casefold_lookup(cls, value)

    @property
    def extension(self) -> str:
        """The file extension of a result in this format (`.mxf`, `.mov` or `.mp4`)."""
        return "." + self.value[:3].lower()


class InputContainer(StrEnum):
    """The containers UploadMedia accepts (seed: UploadMedia, original_file_url), as file extensions."""

    MKV = ".mkv"
    MOV = ".mov"
    MP3 = ".mp3"
    MP4 = ".mp4"
    MPG = ".mpg"
    MPEG = ".mpeg"
    MXF = ".mxf"
    WAV = ".wav"

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        return _casefold_lookup(cls, value)
