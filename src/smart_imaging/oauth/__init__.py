"""The imaging server's own authorization server, per tenant of type ``smart-on-fhir-independent``
(SMART App Launch 2.x on OAuth 2.0), chained to the EHR: the "dual launch" of the reference server.

The app launches against the imaging server (``authorize``); the imaging server sends the user on
to the EHR (``ehr_leg``: silently with the app's id_token as ``id_token_hint`` when it can, else
interactively), learns the user and patient from the EHR's verified answer, asks the user
(``consent``) and issues its own tokens (``tokens``), which FHIR and WADO routes check locally
(``auth.local_tokens``). State lives behind ``store.StateStore`` (SQLite now).

Pure protocol modules (no I/O): ``pkce``, ``params``, ``clients``, ``grants``, ``id_token``,
``ehr_leg``, ``consent``, ``records``. I/O: ``ehr_client`` (the EHR), ``sqlite_store``/``stores``
(state), ``client_auth``, ``tokens``, ``flow`` and ``server`` (composition).
See docs/notes/dual-launch.md.
"""
