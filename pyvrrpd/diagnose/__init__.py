"""``pyvrrpd diagnose``: listen to VRRP on a segment, probe the VIPs and explain what is wrong.

* ``wire``: captured frames → observations (pure; decodes with the daemon's own codec);
* ``analysis``: observations (+ the config, + what the local daemon says) → a report with findings (pure);
* ``render``: the report as text or JSON;
* ``capture``: the only I/O (scapy capture sockets, ARP / Neighbor Solicitation probes, read-only netlink);
* ``expected``: the config's instances as diagnose compares them; ``local``: the local daemon's states;
* ``command``: the command line and the exit status.
"""
