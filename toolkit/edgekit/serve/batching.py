"""Dynamic micro-batching: faces that arrive within a window run as one batch through the artifact's dynamic
batch axis. With a zero window each face runs at once, alone (the default: on a CPU a batch rarely pays)."""

from __future__ import annotations

import asyncio
import time

import numpy as np

# A model faster than this runs in the event loop itself: handing it to a thread costs more than it blocks.
INLINE_MS = 2.0


class MicroBatcher:
    def __init__(self, model, metrics, window_ms: float, max_batch: int):
        self.model, self.metrics = model, metrics
        self.window_s, self.max_batch = window_ms / 1000.0, max(1, max_batch)
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None

    async def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Outputs for one face (`x`: (1, 3, S, S)), batch of one."""
        if self.window_s <= 0:
            if (self.model.batch1_ms or INLINE_MS) < INLINE_MS:  # cheaper than a thread hand-off (~1 ms here)
                return self._call(x)
            return await asyncio.get_running_loop().run_in_executor(None, self._call, x)
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.worker = asyncio.create_task(self._drain())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((x, future))
        self.metrics.queue.set(self.queue.qsize())
        return await future

    def _call(self, batch: np.ndarray) -> list[np.ndarray]:
        start = time.perf_counter()
        out = self.model.run(batch)
        self.metrics.inference.observe(time.perf_counter() - start)
        self.metrics.batch.observe(len(batch))
        return out

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            deadline = loop.time() + self.window_s
            while len(items) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            self.metrics.queue.set(self.queue.qsize())
            try:
                outs = await loop.run_in_executor(None, self._call, np.concatenate([x for x, _ in items]))
                for i, (_, future) in enumerate(items):
                    if not future.done():
                        future.set_result([o[i:i + 1] for o in outs])
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error, the loop goes on
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
