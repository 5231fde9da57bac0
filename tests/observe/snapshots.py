"""A daemon-root snapshot as the subsystems publish it, for the renderers' tests."""

SNAPSHOT = {
    "process": {"name": "pyvrrpd", "version": "0.3.0", "pid": 4242, "start_time": 1796458400.5, "uptime": 3725.2,
                "config": "/etc/keepalived/keepalived.conf", "state": "running", "health": None,
                "reloads": {"requested": 4, "applied": 2, "refused": 1, "failed": 1, "last_result": "failed",
                            "last_time": 1796458500.0}},
    "vrrp": {
        "instances": [
            {"name": "VI_1", "vrid": 51, "interface": "lan0", "family": 4, "version": 2, "state": "MASTER",
             "base_priority": 150, "effective_priority": 150, "master_priority": 150, "faults": {},
             "master_address": "198.51.100.1", "vips": ["198.51.100.100/24"], "advert_int_us": 1_000_000,
             "auth_type": "PASS", "accept": True, "last_transition": 1796458404.103271,
             "counters": {"router": {"adverts_rx": 3, "adverts_tx": 2, "become_master": 1, "release_master": 0,
                                     "priority_zero_rx": 0, "priority_zero_tx": 0, "transitions": 2,
                                     "rival_master_rx": 3,
                                     "discarded": {"auth_failure": 4, "interval_mismatch": 1}},
                          "effects": {"adverts_sent": 2, "address_errors": {}},
                          "port": {"received": 10, "decode_errors": {"bad_checksum": 2}}}},
            {"name": "VI_6 \"quoted\"", "vrid": 7, "interface": "lan1", "family": 6, "version": 3, "state": "FAULT",
             "base_priority": 100, "effective_priority": 90, "faults": {"link:lan1": "interface lan1 is down"},
             "master_address": None, "vips": ["2001:db8::100/64"], "advert_int_us": 100_000,
             "counters": {"router": {"adverts_rx": 0, "adverts_tx": 0, "discarded": {}}, "effects": {},
                          "port": {"received": 0}}},
        ],
    },
    "lvs": {
        "ipvs": {"kernel": True, "services": 1, "destinations": 1, "last_pass": 1796458500.25,
                 "counters": {"passes": 7, "full_passes": 3, "operations": 4, "errors": 1, "repairs": 0,
                              "by_kind": {"AddService": 1, "AddDest": 2, "DelDest": 1}}},
        "checkers": {"probes": [{"name": "TCP_CHECK", "stuck": True}],
                     "counters": {"checks": 12, "failed:timeout": 2, "down": 1, "stuck": 1}},
        "virtual_servers": [
            {"name": "[198.51.100.100]:tcp:80", "quorum_up": True, "real_servers": [
                {"name": "[203.0.113.11]:tcp:80", "up": True, "weight": 1, "last_check_ago": 1.5,
                 "counters": {"check_failures": {"timeout": 1}},
                 "check_latency": {"buckets": {"0.005": 3, "0.05": 6, "1.0": 1}, "sum": 0.21, "count": 10}},
                {"name": "[203.0.113.12]:tcp:80", "up": False, "weight": 0},
            ]},
        ],
    },
    "trackers": {
        "scripts": {"chk_nginx": {"state": "up", "last_result": "exit 0", "last_output": None, "interval": 2,
                                  "counters": {"runs": 5, "succeeded": 5}}},
        "interfaces": {"lan0": "up", "lan9": "gone"},
        "files": {"weights": {"path": "/run/weights", "value": -20, "last_read": 1796458401.0,
                              "counters": {"reads": 3}}},
        "processes": {"haproxy": {"count": 0, "up": False, "pids": []}},
        "counters": {"link_changes": 2},
    },
}
