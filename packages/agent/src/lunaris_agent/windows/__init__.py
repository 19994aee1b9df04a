"""What only Windows has: the service and the Windows APIs the agent calls itself.

- ``service``: the pywin32 service shell the SCM runs (``python.exe -B -m lunaris_agent service
  host``) around :func:`lunaris_agent.runtime.run`, and the definition of the service the MSI
  registers too; ``service_control``: ``lunaris-agent service install|remove|start|stop``. The
  only modules that import pywin32, so they are imported on Windows only.
- ``data_dir``: where ProgramData is (the known folder) and the protected DACL that keeps the
  agent's files to SYSTEM and Administrators; plain ctypes, importable anywhere.
- ``facts``: who is logged on at the console, the SMBIOS serial number, the BIOS key's model
  and manufacturer, and Windows' restart markers; winreg and ctypes, importable anywhere.
"""
