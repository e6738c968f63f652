"""Chapter presentation: figures, tables and teaching helpers that the method never imports.

:mod:`~gsa_utils.chapter_aids.structure` (chapter 1), :mod:`~gsa_utils.chapter_aids.teaching`
(chapters 2-4), :mod:`~gsa_utils.chapter_aids.chapters`, :mod:`~gsa_utils.chapter_aids.summaries`
and :mod:`~gsa_utils.chapter_aids.figures` (dataset chapters 6-9),
:mod:`~gsa_utils.chapter_aids.baselines_view` (chapters 10-11),
:mod:`~gsa_utils.chapter_aids.plotting` (matplotlib figures for all) and
:mod:`~gsa_utils.chapter_aids.page` (every chapter: warnings once per kind, figures with alt text).
"""
