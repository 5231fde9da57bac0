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
async def test_after_a_stall_the_adverts_that_came_meanwhile_go_first():
    """A deadline long overdue (the process was stopped): the reader gets a moment to queue the adverts
    the kernel holds, and they go before the timer, so a backup does not take over from a master whose
    adverts were waiting all along. At most `size` of them: a flood cannot hold the timer off."""
    inbox = Inbox(2)
    overdue = anyio.current_time() - 0.5

    async def reader():
        await anyio.sleep(0)  # the socket reader runs in a later round of the event loop
        for _ in range(3):
            inbox.put(Packet(ADVERT, SRC))

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        assert await inbox.receive(overdue) == Packet(ADVERT, SRC)
    assert await inbox.receive(overdue) == Packet(ADVERT, SRC)
    assert await inbox.receive(overdue) is None  # two taken: now the timer, though one still waits
    assert await inbox.receive(overdue) == Packet(ADVERT, SRC)
    assert await inbox.receive(overdue) is None
    assert await inbox.receive(anyio.current_time() - 0.01) is None  # a little late is no stall


@pytest.mark.anyio
async def test_every_stall_lets_the_reader_in_first():
    """Items taken after one stall, then a timely wait: the next stall waits for the reader again."""
    inbox = Inbox(4)

    async def reader():
        await anyio.sleep(0)
        inbox.put(Packet(ADVERT, SRC))

    for _ in range(3):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            assert await inbox.receive(anyio.current_time() - 0.5) == Packet(ADVERT, SRC)
        assert await inbox.receive(anyio.current_time() + 0.1) is None  # the driver's next, timely wait


@pytest.mark.anyio
async def test_a_sleep_that_ends_late_lets_the_reader_in_first(anyio_backend):
    clock = anyio_backend[1]["clock"]
    inbox = Inbox(4)
    t0 = anyio.current_time()

    async def stall_then_read():
        await anyio.sleep(0.099)
        clock.jump(0.2)  # the whole process stops past the deadline (SIGSTOP, starvation)
        await anyio.sleep(0)
        inbox.put(Packet(ADVERT, SRC))

    async with anyio.create_task_group() as tg:
        tg.start_soon(stall_then_read)
        assert await inbox.receive(t0 + 0.1) == Packet(ADVERT, SRC)


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
