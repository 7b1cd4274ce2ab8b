"""Who may see what: pure access decisions (no I/O). Start here for "who may see this study?".

- ``search_scope``: whose studies an ImagingStudy search may find (``scope_search``), in two steps
  when it needs the token patient's Patient resource (``PatientLookup.resolve``).
- ``retrieval``: whether a WADO-RS request may retrieve a study or series (``decide_retrieval``:
  grant + binding + request + tenant rules), and the confirmation of a study against the
  archive's study-level answer (``check_study``: no other patient's data under the study).
- ``rules``: the tenant's access rules (``TenantRules``), built by the routes from the config.
- ``decisions``: ``Refused`` (a reason code and a message) that the routes render as errors.
- ``policy``, ``policy_config``, ``pdp``: the study-level access policy (issue 11): local rules
  and the external decision point's protocol. It plugs in at ``retrieval.check_study(policy=)``
  for retrievals and per study of a search result.

The I/O around these decisions stays outside: reading the Patient (``auth``), the study-level
search and its cache (``routes.study_guard``), the policy decision point over HTTP
(``policy_client``).
"""
