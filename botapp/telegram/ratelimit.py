"""Rate limits for sending to Telegram: GCRA buckets, in process or shared through Redis.

A bucket is (key, rate per second, burst). `reserve(buckets, max_wait)` books the earliest moment at
which every bucket allows one more call and returns how long the caller must wait for it (0: go now),
or None when that is more than `max_wait` away (nothing is booked then: the caller reschedules its
task instead of holding a worker). `penalize(key, seconds)` pushes a bucket back after Telegram's 429
`retry_after`, so every sender sharing it backs off.

The GCRA ("generic cell rate algorithm") keeps one number per bucket: the theoretical arrival time
(TAT). A call at time t conforms when t >= TAT - tau, with tau = (burst - 1) / rate; it then moves
TAT to max(TAT, t) + 1 / rate.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # calls per second
    burst: int = 1

    @property
    def interval(self) -> float:
        return 1.0 / self.rate if self.rate > 0 else 0.0

    @property
    def tau(self) -> float:
        return max(0, self.burst - 1) * self.interval


class RateLimiter:
    """The interface; `MemoryRateLimiter` and `RedisRateLimiter` implement it."""

    def reserve(self, buckets: list[Bucket], max_wait: float) -> float | None:  # pragma: no cover
        raise NotImplementedError

    def penalize(self, bucket: Bucket, seconds: float) -> None:  # pragma: no cover
        raise NotImplementedError


class MemoryRateLimiter(RateLimiter):
    """One process (the embedded default): a dict of TATs under a lock."""

    def __init__(self, clock=time.monotonic) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def reserve(self, buckets: list[Bucket], max_wait: float) -> float | None:
        buckets = [b for b in buckets if b.rate > 0]
        with self._lock:
            now = self._clock()
            at = now
            for b in buckets:
                tat = max(self._tat.get(b.key, now), now)
                at = max(at, tat - b.tau)
            wait = at - now
            if wait > max_wait:
                return None
            for b in buckets:
                tat = max(self._tat.get(b.key, now), now)
                self._tat[b.key] = max(tat, at) + b.interval
            if len(self._tat) > 50_000:  # forget idle chats
                for key in [k for k, v in self._tat.items() if v < now]:
                    del self._tat[key]
            return wait

    def penalize(self, bucket: Bucket, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            self._tat[bucket.key] = max(self._tat.get(bucket.key, now), now + seconds + bucket.tau)


_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local max_wait = tonumber(ARGV[1])
local at = now
local tats = {}
for i, key in ipairs(KEYS) do
  local tau = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tats[i] = tat
  if tat - tau > at then at = tat - tau end
end
local wait = at - now
if wait > max_wait then return {0, tostring(wait)} end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if at > tat then tat = at end
  tat = tat + interval
  redis.call('SET', key, tostring(tat), 'PX', math.ceil((tat - now + 1) * 1000))
end
return {1, tostring(wait)}
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ = now + tonumber(ARGV[1])
if tat < until_ then
  redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil((until_ - now + 1) * 1000))
end
return 1
"""


class RedisRateLimiter(RateLimiter):
    """Shared by every process using the same Redis (workers, the bot, broadcasts). Uses Redis' clock."""

    def __init__(self, url: str, prefix: str = "tg:rl:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._prefix = prefix
        self._reserve = self._redis.register_script(_RESERVE)
        self._penalize = self._redis.register_script(_PENALIZE)

    def reserve(self, buckets: list[Bucket], max_wait: float) -> float | None:
        buckets = [b for b in buckets if b.rate > 0]
        if not buckets:
            return 0.0
        args: list[float] = [max_wait]
        for b in buckets:
            args += [b.interval, b.tau]
        ok, wait = self._reserve(keys=[self._prefix + b.key for b in buckets], args=args)
        return max(0.0, float(wait)) if int(ok) else None

    def penalize(self, bucket: Bucket, seconds: float) -> None:
        self._penalize(keys=[self._prefix + bucket.key], args=[seconds + bucket.tau])


def ceil_seconds(value: float) -> int:
    return max(1, math.ceil(value))
