"""Redis checkpoint savers (``pip install "langgraph-persist-kit[redis]"``)."""

from langgraph_persist_kit.redis.aio import AsyncRedisSaver
from langgraph_persist_kit.redis.saver import RedisSaver

__all__ = ["AsyncRedisSaver", "RedisSaver"]
