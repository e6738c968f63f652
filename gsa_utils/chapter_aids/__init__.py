"""Chapter presentation: figures, tables and teaching helpers that the method never imports.

By chapter: ``structure`` (1), ``teaching`` (2-4), ``chapters``, ``summaries``, ``figures`` and
``report`` (6-9), ``stability_view`` (5, 9), ``baselines_view`` (10-11); ``plotting`` for all and
``page`` (loaded by every chapter: warnings once per kind, figures with alt text).
"""
