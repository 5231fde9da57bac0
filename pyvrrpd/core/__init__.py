"""The sans-I/O VRRP core: codec, frames, timer arithmetic and the virtual router state machine.

Standard library only; no sockets, no clock, no logging (enforced by tests/test_layering.py).
"""
