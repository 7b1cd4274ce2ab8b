"""The study-level access policy of a tenant: its JSON shape (an additive ``"policy"`` section).

Written for the radiology IT administrator who maintains it. Every object refuses unknown keys
(a typo is an error, not a silently ignored rule), keys starting with ``//`` are comments, ``null``
means "not set", numbers must be finite. Errors name the field (``rules.1.when.modality``)::

    "policy": {
      "default": "allow",                          // effect when no rule matches (required)
      "confidentialityAttribute": "ConfidentialityCode",  // keyword or tag: "00401008",
                                                   // "(0040,1008)", a private tag "00091010"
      "confidentialityWhenAbsent": "N",            // code assumed where the attribute is absent
      "rules": [                                   // first matching rule wins
        {"name": "proxy-no-confidential", "effect": "deny",
         "when": {"user": ["RelatedPerson/*"], "confidentiality": ["R", "V"]}},
        {"name": "no-dose-screens", "effect": "deny", "level": "series",
         "when": {"seriesDescription": "*dose*"}}
      ],
      "backendClients": {                          // SMART Backend Services clients
        "referral-service": {"patients": ["123"], "studies": ["2.25.1234"]},
        "cardiac-review": {"patients": "*", "default": "deny",
                           "rules": [{"effect": "allow", "level": "series",
                                      "when": {"modality": ["MR", "CT"]}}]}
      },
      "decisionPoint": {"url": "https://pdp.example.org/decide", "timeout": 2,
                        "auth": {"type": "bearer", "token": {"$env": "PDP_TOKEN"}},
                        "cacheTtl": 30, "cacheMaxEntries": 10000}
    }

Conditions of ``when`` (all given ones must hold; an empty ``when`` matches everything). Lists mean
"any of these"; see :mod:`smart_imaging.access.policy` for how study- and series-level rules and
missing attributes are evaluated:

- ``modality``: DICOM modality codes (CS, compared upper-case).
- ``bodyPart``: BodyPartExamined (0018,0015) values, case-insensitive.
- ``studyDescription`` / ``seriesDescription``: ``{"glob": "*PELVI*"}`` (a plain string is a glob;
  whole value, case-insensitive) or ``{"regex": "pelvi(s|c)"}`` (found anywhere, case-insensitive).
  Regexes are length-bounded and restricted to a subset that cannot backtrack catastrophically:
  no backreferences or lookarounds, no repeated group containing a repetition or ``|``, at most
  three repetitions.
- ``confidentiality``: codes read from ``confidentialityAttribute`` (case-insensitive).
- ``studyAge``: ``{"olderThanDays": 365}`` and/or ``{"youngerThanDays": 30}``, from StudyDate.
- ``studyInstanceUid``: study UIDs.
- ``clientId``: the token's client_id; ``user``: fhirUser (or the token's ``sub``) patterns
  (``*`` globs, case-sensitive); ``scopes``: the token carries at least one of these scopes.

A rule may say ``"whenUnknown": "match" | "no-match"``: whether a condition that cannot be decided
(attribute missing) lets the rule apply. Default: ``match`` for deny rules, ``no-match`` for allow
rules (deny-safe both ways).
"""

from __future__ import annotations

import fnmatch
import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydicom.datadict import tag_for_keyword

Effect = Literal["allow", "deny"]
MAX_PATTERN = 200
MAX_REPETITIONS = 3
MAX_REPEAT_BOUND = 100

Text = Annotated[str, Field(min_length=1, max_length=256)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
Uid = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]
FhirId = Annotated[str, Field(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        alias_generator=to_camel,
        populate_by_name=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls_and_comments(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None and not str(k).startswith("//")}
        return data


# ---------------------------------------------------------------- text patterns


class TextPattern(_Model):
    """Exactly one of ``glob`` (whole value) or ``regex`` (anywhere); both case-insensitive."""

    glob: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN)
    regex: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _plain_string_is_glob(cls, data: Any) -> Any:
        return {"glob": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_kind(self) -> TextPattern:
        if (self.glob is None) == (self.regex is None):
            raise ValueError("give exactly one of 'glob' or 'regex'")
        if self.regex is not None:
            problem = regex_problem(self.regex)
            if problem:
                raise ValueError(f"regex refused: {problem}")
        compiled(self)
        return self


def compiled(pattern: TextPattern) -> re.Pattern[str]:
    """The compiled pattern (cached; globs are translated by :func:`fnmatch.translate`)."""
    if pattern.glob is not None:
        return _compile("glob", pattern.glob)
    return _compile("regex", pattern.regex or "")


@lru_cache(maxsize=1024)
def _compile(kind: str, text: str) -> re.Pattern[str]:
    source = fnmatch.translate(text) if kind == "glob" else text
    try:
        return re.compile(source, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid {kind}: {exc}") from None


_OPENER = re.compile(r"\(\?(?::|P<[A-Za-z_]\w*>|[aiLmsux]+(?:-[imsx]+)?[:)]|-[imsx]+[:)])")
_REPEAT = re.compile(r"[*+?]|\{(\d+)(?:,(\d*))?\}|\{,(\d+)\}")


class _Group:
    def __init__(self) -> None:
        self.repeats = False  # contains a repetition (directly or in a nested group)
        self.alternates = False  # contains '|'


def regex_problem(text: str) -> str | None:
    """Why ``text`` is outside the safe regex subset (see the module doc), or None."""
    return _Scan(text).run()


class _Scan:
    """One left-to-right pass over a regex, tracking groups and what a repetition applies to."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.stack = [_Group()]
        self.last: _Group | bool = False  # a closed group, an atom (True), or nothing
        self.repetitions = 0

    def run(self) -> str | None:
        while self.i < len(self.text):
            problem = self._step()
            if problem:
                return problem
        if self.repetitions > MAX_REPETITIONS:
            return f"more than {MAX_REPETITIONS} repetitions"
        return None

    def _step(self) -> str | None:
        char = self.text[self.i]
        if char == "\\":
            if self.text[self.i + 1 : self.i + 2] in tuple("123456789"):
                return "backreferences are not allowed"
            self.i, self.last = self.i + 2, True
        elif char == "[":
            self.i, self.last = _class_end(self.text, self.i) + 1, True
        elif char == "(":
            return self._open()
        elif char == ")":
            return self._close()
        elif char == "|":
            self.stack[-1].alternates, self.last = True, False
            self.i += 1
        elif (repeat := _REPEAT.match(self.text, self.i)) is not None:
            return self._repeat(repeat)
        else:
            self.i, self.last = self.i + 1, True
        return None

    def _open(self) -> str | None:
        opener = _OPENER.match(self.text, self.i)
        if self.text.startswith("(?", self.i) and opener is None:
            return "only (...), (?:...), (?P<name>...) and inline flags are allowed"
        self.last = False
        if opener is not None and opener.group().endswith(")"):  # inline flags, no group
            self.i = opener.end()
            return None
        self.stack.append(_Group())
        self.i = opener.end() if opener else self.i + 1
        return None

    def _close(self) -> str | None:
        if len(self.stack) == 1:
            return "unbalanced parenthesis"
        group = self.stack.pop()
        self.stack[-1].repeats |= group.repeats
        self.stack[-1].alternates |= group.alternates
        self.last = group
        self.i += 1
        return None

    def _repeat(self, repeat: re.Match[str]) -> str | None:
        if isinstance(self.last, _Group) and (self.last.repeats or self.last.alternates):
            return "a repeated group may not contain a repetition or '|' (use a character class)"
        if any(int(n) > MAX_REPEAT_BOUND for n in repeat.groups() if n):
            return f"repetition bounds above {MAX_REPEAT_BOUND}"
        self.repetitions += 1
        self.stack[-1].repeats, self.last = True, False
        end = repeat.end()
        self.i = end + (1 if self.text[end : end + 1] in ("?", "+") else 0)
        return None


def _class_end(text: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start`` (or the end: compile reports it)."""
    i = start + 1
    if text[i : i + 1] == "^":
        i += 1
    if text[i : i + 1] == "]":
        i += 1
    while i < len(text) and text[i] != "]":
        i += 2 if text[i] == "\\" else 1
    return min(i, len(text))


# ---------------------------------------------------------------- DICOM attribute names

_HEX_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")


def parse_tag(text: str) -> str:
    """A DICOM JSON tag key (8 upper-case hex digits, PS3.18 F.2) from a keyword or a hex tag."""
    found = _HEX_TAG.match(text.strip())
    if found:
        tag = (found.group(1) + found.group(2)).upper()
    else:
        number = tag_for_keyword(text.strip())
        if number is None:
            raise ValueError(f"{text!r} is neither a DICOM keyword nor a tag like '00401008'")
        tag = f"{number:08X}"
    if tag[:4] in ("0000", "0002", "FFFE"):
        raise ValueError(f"tag {tag} is not a data set attribute (groups 0000, 0002, FFFE)")
    return tag


# ---------------------------------------------------------------- rules


class StudyAge(_Model):
    older_than_days: int | None = Field(default=None, ge=0, le=100_000)
    younger_than_days: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _some_bound(self) -> StudyAge:
        if self.older_than_days is None and self.younger_than_days is None:
            raise ValueError("give 'olderThanDays' and/or 'youngerThanDays'")
        return self


def _items(max_items: int = 1000) -> Any:
    return Field(default=None, min_length=1, max_length=max_items)


class When(_Model):
    """Conditions of a rule; all given ones must hold (see the module doc)."""

    modality: list[Code] | None = _items()
    body_part: list[Code] | None = _items()
    study_description: TextPattern | None = None
    series_description: TextPattern | None = None
    confidentiality: list[Code] | None = _items()
    study_age: StudyAge | None = None
    study_instance_uid: list[Uid] | None = _items(10_000)
    client_id: list[Text] | None = _items()
    user: list[Text] | None = _items()
    scopes: list[Text] | None = _items()


class Rule(_Model):
    effect: Effect
    when: When = When()
    level: Literal["study", "series"] = "study"
    name: str | None = Field(default=None, max_length=100)
    when_unknown: Literal["match", "no-match"] | None = None

    @property
    def unknown_matches(self) -> bool:
        """Whether an undecidable condition lets this rule apply (deny-safe by default)."""
        if self.when_unknown is None:
            return self.effect == "deny"
        return self.when_unknown == "match"

    def label(self, index: int) -> str:
        return f"rule #{index + 1}" + (f" '{self.name}'" if self.name else "")


Rules = Annotated[list[Rule], Field(max_length=500)]


class BackendClient(_Model):
    """What one Backend Services client may see: patients, then optionally studies and rules."""

    patients: Literal["*"] | Annotated[list[FhirId], Field(min_length=1, max_length=100_000)]
    studies: list[Uid] | None = _items(100_000)
    rules: Rules = []
    default: Effect | None = None

    @model_validator(mode="after")
    def _default_with_rules(self) -> BackendClient:
        if self.rules and self.default is None:
            raise ValueError("'default' is required when 'rules' are given")
        return self


# ---------------------------------------------------------------- decision point


class BearerAuth(_Model):
    type: Literal["bearer"]
    token: SecretStr


class BasicAuth(_Model):
    type: Literal["http-basic"]
    username: str
    password: SecretStr


class DecisionPoint(_Model):
    """An external policy decision point (see :mod:`smart_imaging.policy_client`)."""

    url: str = Field(max_length=2000)
    timeout: float = Field(default=2.0, gt=0, le=30)
    auth: Annotated[BearerAuth | BasicAuth, Field(discriminator="type")] | None = None
    cache_ttl: float = Field(default=30.0, ge=0, le=3600)
    cache_max_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    max_response_bytes: int = Field(default=65_536, ge=1024, le=4_194_304)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s?#]+(/[^\s]*)?$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value


# ---------------------------------------------------------------- the policy


class Policy(_Model):
    default: Effect
    rules: Rules = []
    confidentiality_attribute: str | None = None
    confidentiality_when_absent: Code | None = None
    backend_clients: dict[Annotated[str, Field(min_length=1, max_length=256)], BackendClient] = {}
    decision_point: DecisionPoint | None = None

    @field_validator("confidentiality_attribute")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return parse_tag(value) if value is not None else None

    @model_validator(mode="after")
    def _confidentiality_configured(self) -> Policy:
        if self.confidentiality_attribute is None and any(
            rule.when.confidentiality for rule in all_rules(self)
        ):
            raise ValueError("rules use 'confidentiality' but 'confidentialityAttribute' is not set")
        return self


def all_rules(policy: Policy) -> list[Rule]:
    """The tenant's rules and every backend client's rules."""
    found = list(policy.rules)
    for client in policy.backend_clients.values():
        found.extend(client.rules)
    return found


def parse_policy(data: Any) -> Policy:
    """Validate a ``"policy"`` section (raises pydantic's ``ValidationError`` naming the fields)."""
    return Policy.model_validate(data)
