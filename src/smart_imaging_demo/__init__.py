"""The smart-imaging demo: the EHR sandbox (``ehr``), the sample studies (``samples``) and the
composition of both with the imaging server (``app``), plus its ``demo`` and ``samples`` commands
(``cli``, found by ``smart-imaging`` through the ``smart_imaging.commands`` entry points).

It depends on the server package ``smart_imaging``; the server never imports it.
"""
