"""Virtual agents for demos and load tests (``lunaris-agent simulate``): N devices in one
process, each one the real agent runtime (:class:`lunaris_agent.runtime.agent.Agent`) over the
real client, with winget replaced by a simulated inventory.

- ``fleet``: the run: the devices' identities kept on disk (a restarted simulator speaks for the
  same devices), one client shared by all that counts and limits their requests,
  :func:`fleet.simulate`;
- ``inventory``: what ``winget upgrade`` and ``winget list`` show on one virtual PC, drifting
  scan by scan, and its installs;
- ``catalog``: the real winget packages, scan errors and Windows versions all that is drawn
  from (data).
"""
