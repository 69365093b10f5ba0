"""moto server as the local stack and the tests run it: moto_server's own `main`, after five
fixes to moto 5.2.5 that long runs (the load run, the contention bench) need. None of them
changes what any API call answers; each is checked by the test named beside it
(tests/emulator.rs).

1. moto keeps every model object it ever creates, for its dashboard, and that includes the copy
   of each table TransactWriteItems takes so it can roll back: memory grew by a whole table per
   transaction (18.5 GiB within minutes of the load run). We never open the dashboard, so
   nothing is tracked.                                        (memory_stays_flat_under_transactions)
2. moto serves each request on its own thread with no lock around DynamoDB. A cancelled
   transaction puts its copy of the table back over whatever other requests wrote meanwhile,
   and a reader, or the table's stream, can see a write that is then rolled back. DynamoDB
   isolates transactions; here one lock serves DynamoDB and its stream one call at a time
   (moto runs Python under one interpreter lock anyway).  (cancelled_transaction_keeps_others_writes)
3. That copy was deep: every item and every stream record, so each transaction took time in
   proportion to everything the table ever held. Now only the items the transaction writes
   are copied; under the lock nothing else can change before it ends, and stream records never
   change once written.                               (cancelled_transaction_leaves_nothing_written)
4. Every Query sorted the whole table (slow Python comparisons) and then kept one partition's
   items: two thirds of moto's time in the load run. A Query now reads its partition, or, on
   an index, walks the items once unsorted; Query sorts what it keeps itself.
                                              (queries_answer_in_key_order, and every Query in the suite)
5. moto's rollback puts its copy of the table in place, and the copy had a stream shard of its
   own: a shard iterator opened before the rollback (the stream poller keeps one) read the
   old shard, which nothing wrote to again, so every event after the first cancelled
   transaction was lost to it. The table keeps its one shard: the rollback only drops the
   records the cancelled transaction appended to it.
                                     (a_shard_iterator_reads_on_after_a_cancelled_transaction)
"""

import copy
import functools
import sys
import threading
from collections import defaultdict

from moto.core.common_models import BaseModel
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler


# 1. No instance tracking.
def _untracked_new(cls, *args, **kwargs):
    return object.__new__(cls)


BaseModel.__new__ = staticmethod(_untracked_new)

# 2. One DynamoDB call at a time (re-entrant: a transaction calls put_item and friends).
_dynamodb = threading.RLock()


def _one_at_a_time(call_action):
    @functools.wraps(call_action)
    def locked(self):
        with _dynamodb:
            return call_action(self)

    return locked


DynamoHandler.call_action = _one_at_a_time(DynamoHandler.call_action)
DynamoDBStreamsHandler.call_action = _one_at_a_time(DynamoDBStreamsHandler.call_action)

# 3. A transaction's rollback copy holds deep copies of the items it writes, and shares the rest.
# What the request on this thread is doing (moto serves each request on a thread of its own).
_this_request = threading.local()
_transact_write_items = DynamoDBBackend.transact_write_items


def _written_keys(backend, transact_items):
    """{table name: {(hash key, range key or None)}} of every Put, Update and Delete."""
    written = defaultdict(set)
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None or op_type not in ("Put", "Update", "Delete"):
                continue
            attrs = op.get("Item" if op_type == "Put" else "Key") or {}
            try:
                hash_key = DynamoType(attrs[table.hash_key_attr])
                range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, TypeError):
                continue  # moto refuses this op before it writes anything
            written[table.name].add((hash_key, range_key))
    return written


def transact_write_items(self, transact_items):
    _this_request.written = _written_keys(self, transact_items)
    # 5. Each table's shard and its length now: a rollback keeps the shard, minus what it appended.
    named = {op.get("TableName") for entry in transact_items for op in entry.values() if isinstance(op, dict)}
    tables = [(name, self.tables.get(name)) for name in named]
    shards = {name: (table, table.stream_shard, len(table.stream_shard.items))
              for name, table in tables if table is not None and table.stream_shard is not None}
    try:
        return _transact_write_items(self, transact_items)
    finally:
        _this_request.written = None
        for name, (table, shard, length) in shards.items():
            restored = self.tables.get(name)
            if restored is None or restored is table:
                continue  # committed (or never copied): the shard is the table's still
            del shard.items[length:]
            shard.table = restored
            restored.stream_shard = shard


def _table_deepcopy(self, memo):
    clone = copy.copy(self)
    memo[id(self)] = clone
    written = getattr(_this_request, "written", None)
    if written is None:  # any other deep copy stays a full one
        clone.__dict__ = copy.deepcopy(self.__dict__, memo)
        return clone
    # dict.copy() keeps the stored hashes: moto's DynamoType hashes slowly, so no rehashing.
    clone.items = self.items.copy()
    for hash_key, range_key in written.get(self.name, ()):
        if hash_key not in self.items:
            continue
        if range_key is None:
            clone.items[hash_key] = copy.deepcopy(self.items[hash_key])
            continue
        if clone.items[hash_key] is self.items[hash_key]:
            clone.items[hash_key] = self.items[hash_key].copy()
        if range_key in self.items[hash_key]:
            clone.items[hash_key][range_key] = copy.deepcopy(self.items[hash_key][range_key])
    # 5. The shard is shared, not copied: transact_write_items hands it to whichever table stays.
    return clone


DynamoDBBackend.transact_write_items = transact_write_items
Table.__deepcopy__ = _table_deepcopy

# 4. A Query reads one partition, or walks the items once for an index, without sorting the table.
_table_query = Table.query
_table_all_items = Table.all_items
_EVERY_ITEM = object()


def _query(self, hash_key, *args, **kwargs):
    index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
    _this_request.query_partition = hash_key if index_name is None and hash_key is not None else _EVERY_ITEM
    try:
        return _table_query(self, hash_key, *args, **kwargs)
    finally:
        _this_request.query_partition = None


def _all_items(self):
    partition = getattr(_this_request, "query_partition", None)
    if partition is None:  # a Scan: its pages follow this order
        return _table_all_items(self)
    if partition is _EVERY_ITEM:
        parts = self.items.values()
    else:
        parts = [self.items[partition]] if partition in self.items else []
    if not self.range_key_attr:
        return list(parts)
    return [item for part in parts for item in part.values()]


Table.query = _query
Table.all_items = _all_items

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
