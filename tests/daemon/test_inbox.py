"""The instance inbox under trio's MockClock: items cut the driver's sleep short, deadlines end it."""

from __future__ import annotations

import ipaddress

import anyio
import pytest

from pyvrrpd.core.packet import ADVERTISEMENT, Advertisement
from pyvrrpd.daemon.instance import Inbox, Packet, SetFault

SRC = ipaddress.ip_address("198.51.100.12")
ADVERT = Advertisement(3, ADVERTISEMENT, 51, 100, 1, 0, 10, 0, (ipaddress.ip_address("198.51.100.100"),), b"")


@pytest.mark.anyio
async def test_sleeps_until_the_deadline_exactly():
    inbox = Inbox(4)
    deadline = anyio.current_time() + 3.609375
    assert await inbox.receive(deadline) is None
    assert anyio.current_time() == pytest.approx(deadline, abs=1e-9)


@pytest.mark.anyio
async def test_an_item_cuts_the_sleep_short():
    inbox = Inbox(4)
    t0 = anyio.current_time()

    async def deliver():
        await anyio.sleep(0.25)
        inbox.send_nowait(Packet(ADVERT, SRC))

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        assert await inbox.receive(t0 + 10) == Packet(ADVERT, SRC)
        assert anyio.current_time() - t0 == pytest.approx(0.25, abs=1e-9)
        tg.start_soon(deliver)
        assert await inbox.receive(None) == Packet(ADVERT, SRC)  # no deadline: waits for the item


@pytest.mark.anyio
async def test_a_due_deadline_goes_before_queued_items():
    inbox = Inbox(4)
    inbox.send_nowait(Packet(ADVERT, SRC))
    assert await inbox.receive(anyio.current_time()) is None
    assert await inbox.receive(anyio.current_time() + 1) == Packet(ADVERT, SRC)


@pytest.mark.anyio
async def test_full_inbox_refuses_adverts_but_never_control_items():
    inbox = Inbox(1)
    inbox.send_nowait(Packet(ADVERT, SRC))
    with pytest.raises(anyio.WouldBlock):
        inbox.send_nowait(Packet(ADVERT, SRC))
    inbox.put(SetFault("link:lan0", "link down"))
    assert await inbox.receive(None) == Packet(ADVERT, SRC)
    assert await inbox.receive(None) == SetFault("link:lan0", "link down")


@pytest.mark.anyio
async def test_close_ends_the_stream_after_the_queued_items():
    inbox = Inbox(4)
    inbox.put(SetFault("link:lan0", None))
    inbox.close()
    with pytest.raises(anyio.ClosedResourceError):
        inbox.send_nowait(Packet(ADVERT, SRC))
    assert await inbox.receive(None) == SetFault("link:lan0", None)
    with pytest.raises(anyio.EndOfStream):
        await inbox.receive(anyio.current_time() + 1)

    waiting = Inbox(4)

    async def close_later():
        await anyio.sleep(0.5)
        waiting.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(close_later)
        with pytest.raises(anyio.EndOfStream):
            await waiting.receive(None)  # a close wakes a waiting driver too
