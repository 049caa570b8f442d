"""Score the kiosk's decisions against a generated kiosk video's visits: one welcome per enrolled visit, no other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class VisitScore:
    """enrolled_visits: visits of enrolled people close enough to check; welcomed: those welcomed exactly once by
    the right name; wrong: welcomes of someone else, of an unknown or too-far visitor, or outside any visit;
    repeated: extra welcomes within one visit; unknown_visits / unknown_events: unknown visitors and the
    "unknown" decisions made during their visits; far_decisions: decisions of any kind during visits whose face
    stays too small to check (the kiosk should only say "Step closer")."""

    enrolled_visits: int
    welcomed: int
    wrong: int
    repeated: int
    unknown_visits: int
    unknown_events: int
    far_decisions: int

    @property
    def ok(self) -> bool:
        return self.welcomed == self.enrolled_visits and self.wrong == 0 and self.repeated == 0


def score_visits(events: Sequence, visits: Sequence[dict], names: Sequence[str]) -> VisitScore:
    """events: apps.face.kiosk.Event (kind, name, frame). visits: the video's .visits.json entries. names: the
    enrolled name of each enrolled identity (identity i < len(names) is names[i])."""
    welcomes = [e for e in events if e.kind == "welcome"]
    claimed = [False] * len(welcomes)
    welcomed = wrong = repeated = unknown_events = far_decisions = 0
    for v in visits:
        inside = [i for i, e in enumerate(welcomes) if v["start"] <= e.frame <= v["end"]]
        for i in inside:
            claimed[i] = True
        expected = names[v["identity"]] if v["enrolled"] and not v["small"] else None
        right = [i for i in inside if welcomes[i].name == expected]
        wrong += len(inside) - len(right)
        repeated += max(0, len(right) - 1)
        welcomed += int(expected is not None and len(right) >= 1)
        if v["small"]:
            far_decisions += sum(1 for e in events if v["start"] <= e.frame <= v["end"])
        if not v["enrolled"]:
            unknown_events += sum(1 for e in events if e.kind == "unknown" and v["start"] <= e.frame <= v["end"])
    wrong += claimed.count(False)
    enrolled_visits = sum(1 for v in visits if v["enrolled"] and not v["small"])
    unknown_visits = sum(1 for v in visits if not v["enrolled"])
    return VisitScore(enrolled_visits, welcomed, wrong, repeated, unknown_visits, unknown_events, far_decisions)
