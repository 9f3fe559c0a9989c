"""Views of the QC report: ``qc.json`` for programs, ``qc.html`` for people."""
