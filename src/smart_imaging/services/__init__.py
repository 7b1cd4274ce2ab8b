"""Services the routes use around the pure decisions of ``smart_imaging.access`` (I/O here):

- ``study_policy``: the study-level access policy applied to search results and retrievals, with
  the external decision point and a per-token decision cache.
- ``audit_trail``: AuditEvents for searches and retrievals, to the sinks ``SMART_IMAGING_AUDIT``
  names (``smart_imaging.audit``, ``smart_imaging.fhir.audit_event``).
- ``last_updated``: a study's modification time from the archive's own API (``_lastUpdated``).
- ``registry``: one of each per tenant, held by the app.
"""
