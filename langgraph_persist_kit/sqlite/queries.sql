-- The hot path of the SQLite savers, by name: migrations, put, put_writes and the
-- reads (deletes, copies, pruning, cleanup and stats are in upkeep.sql). {where}
-- is assembled in _sql/plans.py and {rows} in sqlite/_plans.py from fixed text
-- (never user input); every value is a bound parameter.

-- create_migrations_table --
-- The version table of sqlite/migrations.
CREATE TABLE IF NOT EXISTS persist_kit_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
)

-- select_migrations --
-- Versions already applied.
SELECT version FROM persist_kit_migrations ORDER BY version

-- insert_migration --
-- Record one applied migration, in the transaction that applied it.
INSERT INTO persist_kit_migrations (version, name, applied_at) VALUES (?, ?, ?)

-- select_checkpoints --
-- Checkpoint rows matching {where}, newest first, then every channel value and
-- pending write they need: one round trip for get_tuple or a page of list. The
-- values include every version their pieces extend (wanted follows base_version
-- through rows of type 'append', whose base_version is read without touching a
-- whole value's overflow pages). Row layout: see SqlPlans (kinds 0 checkpoint,
-- 1 channel value, 2 pending write).
WITH RECURSIVE cp AS (
    SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
           checkpoint, channel_versions, metadata
    FROM checkpoints
    WHERE {where}
    ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
    LIMIT :limit
), wanted (thread_id, checkpoint_ns, channel, version) AS (
    SELECT cp.thread_id, cp.checkpoint_ns, je.key, je.value
    FROM cp, json_each(cp.channel_versions) AS je
    UNION
    SELECT p.thread_id, p.checkpoint_ns, p.channel, p.base_version
    FROM wanted AS w JOIN channel_values AS p
      ON p.thread_id = w.thread_id AND p.checkpoint_ns = w.checkpoint_ns
     AND p.channel = w.channel AND p.version = w.version
    WHERE p.type = 'append'
)
SELECT 0, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
       checkpoint, channel_versions, metadata, NULL
FROM cp
UNION ALL
SELECT 1, v.thread_id, v.checkpoint_ns, v.channel, v.version, v.type, v.value,
       v.base_version, v.position, v.items
FROM channel_values AS v
WHERE (v.thread_id, v.checkpoint_ns, v.channel, v.version) IN (SELECT * FROM wanted)
UNION ALL
SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.type, w.value,
       w.channel, w.task_path, w.idx
FROM cp JOIN writes AS w
  ON w.thread_id = cp.thread_id AND w.checkpoint_ns = cp.checkpoint_ns
 AND w.checkpoint_id = cp.checkpoint_id

-- select_bases --
-- Of the versions (:channels, :versions: JSON arrays, versions as JSON text) that a
-- put's pieces extend, those still stored (read in the put's transaction).
SELECT channel, version FROM channel_values
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND (channel, version) IN (
      SELECT c.value, json_extract(v.value, '$')
      FROM json_each(:channels) AS c JOIN json_each(:versions) AS v ON v.key = c.key)

-- insert_channel_values --
-- The channel values a put brings, {rows} being one "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
-- each. A version already stored is kept: a channel version names one value, and
-- stored rows never change, so chains of pieces cannot loop. Returns the channels
-- written (the others were held already).
INSERT OR IGNORE INTO channel_values (
    thread_id, checkpoint_ns, channel, version, type, value, base_version, position, items
) VALUES {rows}
RETURNING channel

-- select_head --
-- The latest root checkpoint of :thread_id, read inside a versioned put's
-- BEGIN IMMEDIATE transaction (no other writer can move it before the commit).
SELECT latest_checkpoint_id FROM threads WHERE thread_id = :thread_id

-- insert_checkpoint --
-- One checkpoint row; a re-put of the same id replaces it.
INSERT OR REPLACE INTO checkpoints (
    thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
    channel_versions, metadata, run_id, created_at
) VALUES (
    :thread_id, :checkpoint_ns, :checkpoint_id, :parent_checkpoint_id, :type, :checkpoint,
    :channel_versions, :metadata, :run_id, :created_at
)

-- insert_writes --
-- Pending writes, {rows} being one "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" each. A
-- regular write (idx >= 0) already stored is kept; a special one is replaced.
-- Up to 500 rows a statement, so a usual call is atomic without an explicit
-- transaction; larger calls run in one.
INSERT INTO writes (
    thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
    task_path, created_at
) VALUES {rows}
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
    channel = excluded.channel, type = excluded.type, value = excluded.value,
    task_path = excluded.task_path, created_at = excluded.created_at
WHERE excluded.idx < 0

-- select_latest_checkpoint_id --
-- The newest checkpoint id of one namespace of a thread.
SELECT max(checkpoint_id) FROM checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns

-- walk_ancestors --
-- The checkpoint :checkpoint_id and up to :depth of its ancestors, nearest
-- first, with the version and value type of each channel in :channels (JSON
-- array) at each of them. Follows parent links, not id order.
WITH RECURSIVE chain (depth, checkpoint_id, parent_checkpoint_id, channel_versions) AS (
    SELECT 0, checkpoint_id, parent_checkpoint_id, channel_versions
    FROM checkpoints
    WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
      AND checkpoint_id = :checkpoint_id
    UNION ALL
    SELECT chain.depth + 1, c.checkpoint_id, c.parent_checkpoint_id, c.channel_versions
    FROM chain CROSS JOIN checkpoints AS c
    WHERE c.thread_id = :thread_id AND c.checkpoint_ns = :checkpoint_ns
      AND c.checkpoint_id = chain.parent_checkpoint_id AND chain.depth < :depth
)
SELECT chain.depth, chain.checkpoint_id, chain.parent_checkpoint_id, je.key, je.value, v.type
FROM chain
LEFT JOIN json_each(chain.channel_versions) AS je
       ON je.key IN (SELECT value FROM json_each(:channels))
LEFT JOIN channel_values AS v
       ON v.thread_id = :thread_id AND v.checkpoint_ns = :checkpoint_ns
      AND v.channel = je.key AND v.version = je.value
ORDER BY chain.depth

-- select_delta_history --
-- Seed values (:seed_channels and :seed_versions, JSON arrays of channels and of
-- versions as JSON text), with every version their pieces extend, and the pending
-- writes of :checkpoint_ids on :channels. Kinds: 0 seed value, 1 pending write.
WITH RECURSIVE wanted (channel, version) AS (
    SELECT c.value, json_extract(v.value, '$')
    FROM json_each(:seed_channels) AS c JOIN json_each(:seed_versions) AS v ON v.key = c.key
    UNION
    SELECT p.channel, p.base_version
    FROM wanted AS w JOIN channel_values AS p
      ON p.thread_id = :thread_id AND p.checkpoint_ns = :checkpoint_ns
     AND p.channel = w.channel AND p.version = w.version
    WHERE p.type = 'append'
)
SELECT 0, channel, version, type, value, base_version, position, items
FROM channel_values
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND (channel, version) IN (SELECT * FROM wanted)
UNION ALL
SELECT 1, checkpoint_id, channel, type, value, task_id, idx, task_path
FROM writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND checkpoint_id IN (SELECT value FROM json_each(:checkpoint_ids))
  AND channel IN (SELECT value FROM json_each(:channels))

-- select_threads --
-- The registry, newest-updated first, rows matching {where}.
SELECT thread_id, created_at, updated_at, metadata
FROM threads
WHERE {where}
ORDER BY updated_at DESC, thread_id DESC
LIMIT :limit
