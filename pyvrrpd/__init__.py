"""pyvrrpd: a VRRP and LVS health-checker daemon that runs keepalived's configuration."""

__version__ = "0.1.0.dev0"
