"""Study-level access decisions from a tenant's :class:`~.policy_config.Policy` (pure, no I/O).

Interface for routes (search, read, WADO-RS, QIDO-RS)::

    requester = Requester(client_id, user, frozenset(scopes), patient, backend=False)
    patient_ok = decide_patient(policy, requester)     # Backend Services: 403 when not .allowed
    decision = decide_study(policy, requester, study_json, series_jsons)
    decision.allowed          # any access at all (False: omit from search, 403 on retrieval)
    decision.complete         # whole-study requests allowed (False: refuse them, never partial)
    decision.series_allowed(uid)    # series-level requests
    decision.reason           # for the audit record (rule names, never token contents)

``study_json`` is one QIDO-RS study result and ``series_jsons`` its series (DICOM JSON, PS3.18
F.2); :func:`query_fields` names the attributes to ask the archive for (``includefield``). Pass the
series whenever you have them; :func:`needs_series` says when the rules look at nothing but
study-level attributes. ``Requester.patient`` is the FHIR Patient id whose data is requested (App
Launch: the token's patient context; Backend Services: the searched or bound patient).

Evaluation, per series (first matching rule wins, else ``default``):

- A ``"level": "series"`` rule is tested on each series: series attributes (Modality,
  BodyPartExamined, SeriesDescription, confidentiality codes of the series and of its study) plus
  study attributes (StudyDescription, StudyDate, StudyInstanceUID) and the requester. It allows or
  refuses just the series it matches.
- A ``"level": "study"`` rule (the default) applies to the whole study. Its conditions on series
  attributes are quantified deny-safe: a deny rule applies when ANY series (or the study's own
  ModalitiesInStudy, BodyPartExamined, confidentiality) matches, an allow rule only when EVERY one
  does (``allow modality MR`` does not release an MR study that also holds an SR series; use a
  series-level rule for that). Multi-valued attributes are quantified the same way per value.
- Missing attributes are *unknown*, not empty: a condition on them cannot be decided, and the
  rule applies only if its ``whenUnknown`` says ``match``: by default deny rules apply (an
  unreadable study is refused by a rule that might cover it) and allow rules do not (nothing is
  released on a guess). ``confidentialityWhenAbsent`` names the code meant by an absent
  confidentiality attribute. A missing client_id or user is unknown as well; missing scopes are none.
- With no series given, the study stands in for its one series (``series_known`` False): the
  decision is whole or nothing.
- A series without SeriesInstanceUID (or a series entry that is not a JSON object) cannot be
  named, so it is never allowed: its study is at best partial.
- Backend Services (``Requester.backend``): the client must be in ``backendClients``, the patient in
  its ``patients``, the study in its ``studies`` (when given) and pass its ``rules``; the result is
  intersected with the tenant-wide rules (both must allow).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from typing import Literal

from ..config.policy import Effect, Policy, Rule, StudyAge, TextPattern, When, all_rules, compiled
from ..dicom import json_model as dj
from ..dicom import tags

Outcome = Literal["allow", "partial", "deny"]
Tri = bool | None  # None: cannot be decided (an attribute is missing)
Atoms = tuple[str, ...] | None
MAX_TEXT = 64  # characters matched: an LO value's length (PS3.5 6.2); keeps regex worst cases ~1 ms


@dataclass(frozen=True)
class Requester:
    client_id: str | None
    user: str | None  # fhirUser, else the token's sub
    scopes: frozenset[str]
    patient: str | None
    backend: bool = False  # a SMART Backend Services (system/) token


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class StudyDecision:
    study_uid: str | None
    outcome: Outcome
    allowed_series: tuple[str, ...]
    refused_series: tuple[str, ...]
    reason: str
    series_known: bool = True

    @property
    def allowed(self) -> bool:
        return self.outcome != "deny"

    @property
    def complete(self) -> bool:
        """Whole-study retrieval may be served (IG: never a successful partial study)."""
        return self.outcome == "allow"

    def series_allowed(self, series_uid: str) -> bool:
        """A series seen at decision time and allowed; any series of a whole study nobody listed."""
        if series_uid in self.allowed_series:
            return True
        return self.outcome == "allow" and not self.series_known


# ---------------------------------------------------------------- facts read from DICOM JSON


@dataclass(frozen=True)
class _View:
    """One series, or the study's own attributes."""

    uid: str | None
    modality: Atoms
    body_part: Atoms
    description: str | None
    confidentiality: Atoms
    optional: bool = False  # the study's own attributes beside its series: only known values count


@dataclass(frozen=True)
class _Facts:
    uid: str | None
    description: str | None
    date: date | None
    study: _View
    series: tuple[_View, ...]
    series_known: bool


def _atoms(ds: dj.DicomJson, tag: str | None, *, upper: bool) -> Atoms:
    if tag is None:
        return None
    found = tuple(v.upper() if upper else v.casefold() for v in dj.texts(ds, tag))
    return found or None


def _union(a: Atoms, b: Atoms) -> Atoms:
    return None if a is None and b is None else (a or ()) + (b or ())


def _bounded(value: str | None) -> str | None:
    return value[:MAX_TEXT] if value is not None else None


def _study_date(ds: dj.DicomJson) -> date | None:
    raw = (dj.text(ds, tags.StudyDate) or "").replace(".", "")
    try:
        return datetime.strptime(raw, "%Y%m%d").date() if len(raw) == 8 and raw.isdigit() else None
    except ValueError:
        return None


def _series_view(ds: dj.DicomJson, conf: str | None, study: _View, absent: Atoms) -> _View:
    """A series; an unreadable entry becomes a series without UID (never allowed)."""
    return _View(
        dj.text(ds, tags.SeriesInstanceUID),
        _atoms(ds, tags.Modality, upper=True),
        _atoms(ds, tags.BodyPartExamined, upper=False),
        _bounded(dj.text(ds, tags.SeriesDescription)),
        _union(_atoms(ds, conf, upper=False), study.confidentiality) or absent,
    )


def _facts(policy: Policy, study: dj.DicomJson, series: Sequence[dj.DicomJson]) -> _Facts:
    conf = policy.confidentiality_attribute
    absent = (policy.confidentiality_when_absent.casefold(),) if policy.confidentiality_when_absent else None
    own = _View(
        dj.text(study, tags.StudyInstanceUID),
        _atoms(study, tags.ModalitiesInStudy, upper=True),
        _atoms(study, tags.BodyPartExamined, upper=False),
        None,
        _atoms(study, conf, upper=False),
    )
    views = tuple(_series_view(s if isinstance(s, dict) else {}, conf, own, absent) for s in series)
    stand_in = replace(own, confidentiality=own.confidentiality or absent)
    return _Facts(
        uid=own.uid,
        description=_bounded(dj.text(study, tags.StudyDescription)),
        date=_study_date(study),
        study=own,
        series=views or (stand_in,),
        series_known=bool(views),
    )


# ---------------------------------------------------------------- conditions


def _quantify(results: Iterable[Tri], every: bool) -> Tri:
    """Kleene ALL (``every``) or ANY over three-valued results."""
    found = list(results)
    if every:
        return False if False in found else (None if None in found else True)
    return True if True in found else (None if None in found else False)


def _in(views: Sequence[_View], field: str, wanted: frozenset[str], every: bool) -> Tri:
    results: list[Tri] = []
    for view in views:
        atoms: Atoms = getattr(view, field)
        if atoms is None:
            results.extend([] if view.optional else [None])
        else:
            results.extend(a in wanted for a in atoms)
    return _quantify(results, every)


def _text(value: str | None, pattern: TextPattern) -> Tri:
    if value is None:
        return None
    regex = compiled(pattern)
    return bool(regex.match(value) if pattern.glob is not None else regex.search(value))


def _age(facts: _Facts, age: StudyAge, today: date) -> Tri:
    if facts.date is None:
        return None
    days = (today - facts.date).days
    older, younger = age.older_than_days, age.younger_than_days
    return (older is None or days > older) and (younger is None or days < younger)


def _requester(when: When, req: Requester) -> list[Tri]:
    found: list[Tri] = []
    if when.client_id is not None:
        found.append(None if req.client_id is None else req.client_id in when.client_id)
    if when.user is not None:
        user = req.user
        found.append(None if user is None else any(fnmatchcase(user, p) for p in when.user))
    if when.scopes is not None:
        found.append(bool(req.scopes.intersection(when.scopes)))
    return found


def _attributes(when: When, facts: _Facts, views: Sequence[_View], every: bool, today: date) -> list[Tri]:
    found: list[Tri] = []
    for field, wanted in (
        ("modality", when.modality and {m.upper() for m in when.modality}),
        ("body_part", when.body_part and {b.casefold() for b in when.body_part}),
        ("confidentiality", when.confidentiality and {c.casefold() for c in when.confidentiality}),
    ):
        if wanted:
            found.append(_in(views, field, frozenset(wanted), every))
    if when.series_description is not None:
        pattern = when.series_description
        texts = (_text(v.description, pattern) for v in views if not v.optional)
        found.append(_quantify(texts, every))
    if when.study_description is not None:
        found.append(_text(facts.description, when.study_description))
    if when.study_age is not None:
        found.append(_age(facts, when.study_age, today))
    if when.study_instance_uid is not None:
        found.append(None if facts.uid is None else facts.uid in when.study_instance_uid)
    return found


def _matches(rule: Rule, req: Requester, facts: _Facts, views: Sequence[_View], today: date) -> bool:
    every = rule.effect == "allow"
    conditions = _requester(rule.when, req) + _attributes(rule.when, facts, views, every, today)
    result = _quantify(conditions, every=True)  # AND
    return result is True or (result is None and rule.unknown_matches)


def _study_views(facts: _Facts) -> tuple[_View, ...]:
    """The series plus the study's own attributes; the study's unknowns are the series' business."""
    own = replace(facts.study, optional=True)
    return (*facts.series, own) if facts.series_known else facts.series


# ---------------------------------------------------------------- decisions


def _ruleset(
    rules: Sequence[Rule], default: Effect, req: Requester, facts: _Facts, today: date
) -> StudyDecision:
    study_level: dict[int, bool] = {}
    verdicts: list[tuple[_View, Effect, str]] = []
    for view in facts.series:
        effect, label = default, f"default {default}"
        for index, rule in enumerate(rules):
            if rule.level == "study":
                if index not in study_level:
                    study_level[index] = _matches(rule, req, facts, _study_views(facts), today)
                hit = study_level[index]
            else:
                hit = _matches(rule, req, facts, (view,), today)
            if hit:
                effect, label = rule.effect, rule.label(index)
                break
        verdicts.append((view, effect, label))
    return _decision(facts, verdicts)


def _decision(facts: _Facts, verdicts: Sequence[tuple[_View, Effect, str]]) -> StudyDecision:
    allowed = tuple(v.uid for v, effect, _ in verdicts if effect == "allow" and v.uid)
    refused = tuple(v.uid or "" for v, effect, _ in verdicts if not (effect == "allow" and v.uid))
    if not facts.series_known:
        allowed, refused = (), ()
        outcome: Outcome = "allow" if verdicts[0][1] == "allow" else "deny"
    else:
        outcome = "deny" if not allowed else ("partial" if refused else "allow")
    labels = _unique(label for _, _, label in verdicts)
    if outcome == "partial":
        why = "; ".join(_unique(lbl for v, e, lbl in verdicts if not (e == "allow" and v.uid)))
        reason = f"{len(refused)} of {len(verdicts)} series refused ({why or 'no SeriesInstanceUID'})"
    else:
        reason = f"{'allowed' if outcome == 'allow' else 'refused'} by {'; '.join(labels)}"
    return StudyDecision(facts.uid, outcome, allowed, refused, reason, facts.series_known)


def _unique(labels: Iterable[str], limit: int = 3) -> list[str]:
    found: list[str] = []
    for label in labels:
        if label not in found:
            found.append(label)
    return found[:limit] + (["..."] if len(found) > limit else [])


def refused(study_uid: str | None, reason: str) -> StudyDecision:
    return StudyDecision(study_uid, "deny", (), (), reason, series_known=False)


def decide_patient(policy: Policy, req: Requester) -> Decision:
    """Backend Services: is the patient within the client's pre-authorized access (else 403)?"""
    if not req.backend:
        return Decision(True, "not a Backend Services request")
    client = policy.backend_clients.get(req.client_id or "")
    if client is None:
        return Decision(False, f"client {req.client_id!r} is not a registered Backend Services client")
    if client.patients != "*" and req.patient not in client.patients:
        return Decision(False, f"patient {req.patient!r} is outside client {req.client_id!r}'s access")
    return Decision(True, f"patient within client {req.client_id!r}'s access")


def _backend(policy: Policy, req: Requester, facts: _Facts, today: date) -> StudyDecision:
    patient = decide_patient(policy, req)
    if not patient.allowed:
        return refused(facts.uid, patient.reason)
    client = policy.backend_clients[req.client_id or ""]
    if client.studies is not None and facts.uid not in client.studies:
        return refused(facts.uid, f"study not in client {req.client_id!r}'s studies")
    if client.rules:
        decision = _ruleset(client.rules, client.default or "deny", req, facts, today)
        return replace(decision, reason=f"client {req.client_id!r}: {decision.reason}")
    return StudyDecision(facts.uid, "allow", (), (), patient.reason, series_known=False)


def decide_study(
    policy: Policy,
    requester: Requester,
    study_json: dj.DicomJson,
    series_jsons: Sequence[dj.DicomJson] = (),
    *,
    today: date | None = None,
) -> StudyDecision:
    """The decision for one study (see the module doc); ``today`` defaults to the UTC date."""
    day = today or datetime.now(UTC).date()
    facts = _facts(policy, study_json, series_jsons)
    decision = _ruleset(policy.rules, policy.default, requester, facts, day)
    if requester.backend:
        decision = intersect(_backend(policy, requester, facts, day), decision)
    return decision


def intersect(first: StudyDecision, second: StudyDecision) -> StudyDecision:
    """What both decisions allow (e.g. local rules and an external decision point)."""
    if not first.allowed or not second.allowed:
        return refused(first.study_uid, first.reason if not first.allowed else second.reason)
    if not first.series_known:
        return replace(second, reason=f"{first.reason}; {second.reason}")
    if not second.series_known:
        return replace(first, reason=f"{first.reason}; {second.reason}")
    both = set(second.allowed_series)
    allowed = tuple(uid for uid in first.allowed_series if uid in both)
    everything = first.allowed_series + first.refused_series
    rest = tuple(uid for uid in everything if uid not in allowed)
    outcome: Outcome = "deny" if not allowed else ("partial" if rest else "allow")
    return StudyDecision(first.study_uid, outcome, allowed, rest, f"{first.reason}; {second.reason}")


# ---------------------------------------------------------------- what to ask the archive for


def query_fields(policy: Policy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tags (study level, series level) the rules read: add them to QIDO-RS ``includefield``."""
    study = [tags.StudyInstanceUID, tags.StudyDate, tags.ModalitiesInStudy, tags.StudyDescription]
    series = [tags.SeriesInstanceUID, tags.Modality, tags.BodyPartExamined, tags.SeriesDescription]
    if policy.confidentiality_attribute:
        study.append(policy.confidentiality_attribute)
        series.append(policy.confidentiality_attribute)
    return tuple(study), tuple(series)


def needs_series(policy: Policy) -> bool:
    """False when only study-level attributes matter (the series query may be skipped)."""
    return any(
        rule.level == "series"
        or rule.when.body_part
        or rule.when.series_description
        or rule.when.confidentiality
        for rule in all_rules(policy)
    )
