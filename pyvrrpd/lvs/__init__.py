"""LVS: the IPVS table pyvrrpd wants (table.py), what to do about the kernel's (diff.py), the kernel
adapter and its in-memory fake (ipvs.py), and the subsystem that keeps the two in step (reconciler.py).
The checkers feed it through :meth:`pyvrrpd.lvs.reconciler.LvsSubsystem.set_health`."""
