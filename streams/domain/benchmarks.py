"""Industry benchmark bands of ACW per interaction, which the presets, the report and the dashboard compare with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Band:
    """A benchmark's range of average ACW per interaction, in seconds."""

    low: float
    high: float

    @property
    def middle(self) -> float:
        """Halfway between low and high."""
        return (self.low + self.high) / 2


# Commonly published ranges of average ACW per interaction (general 2-4 min, financial services 3-6,
# healthcare 4-8, technical support 3-5).
BANDS: dict[str, Band] = {
    "general": Band(120.0, 240.0),
    "financial_services": Band(180.0, 360.0),
    "healthcare": Band(240.0, 480.0),
    "technical_support": Band(180.0, 300.0),
}
