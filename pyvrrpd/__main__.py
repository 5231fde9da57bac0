from pyvrrpd.cli import entry

raise SystemExit(entry())
