"""Customer import (R7): CSV/XLSX files through a saved column mapping into the archive.

    spec.py      what a column mapping may say (ColumnMapping.spec), checked up front
    reader.py    files as rows of text cells, streamed (encodings, XLSX)
    rows.py      per-row conversion and checks in Python
    staging.py   COPY into a staging table, archive-wide checks as joins, the set-based upsert
    run.py       one pass: the dry run and the commit, in one transaction
    progress.py  liveness (advisory lock) and progress (cache) of running jobs
    services.py  mappings and jobs: who may, status changes, inline run or Celery
    selectors.py what a user may see of them
    forms.py     the wizard's upload and mapping forms

docs/key-accounts-import.md describes the file format and the mapping for users.
"""
