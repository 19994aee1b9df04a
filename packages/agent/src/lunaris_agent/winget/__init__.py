"""Everything the agent knows about winget: reading what it prints, and running it.

Reading (pure functions and data, no I/O):

- ``parse``: ``winget upgrade`` / ``winget list`` output -> :class:`results.ScanResult`;
  ``columns`` cuts a table's rows at its display columns, ``lines`` tells what one line is
  (a trailer, a title, an HRESULT, the failure the output ends in), ``text`` cleans what a
  console capture holds (escape sequences, spinners, mojibake).
- ``words`` and ``hresults``: the tables (data): the header labels and messages in every
  language winget speaks, and its result codes.
- ``outcome``: a ``winget upgrade --id`` run -> :class:`outcome.InstallOutcome`.

Running: ``run`` finds winget and runs it (bounded output, timeouts that kill the whole process
tree); ``upgrade`` is what the agent asks of it: the scan and one package's upgrade.
"""
