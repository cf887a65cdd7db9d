-- Every SQL statement of the Postgres savers, by name: the same names and
-- parameter names as sqlite/queries.sql. {schema} is the saver's quoted schema;
-- {where} is a fragment from postgres/plans.py (never user input). put and
-- put_writes are one statement each, atomic without an explicit transaction;
-- the other writes run in one transaction. Bytes travel as binary parameters
-- (%(name)b), not escaped text.

-- find_migrations_table --
-- The version table if it exists (NULL otherwise), without needing any privilege.
SELECT to_regclass(%(table)s)::text

-- lock_setup --
-- Serialise concurrent setup() calls; released when the transaction ends.
SELECT pg_advisory_xact_lock(%(key)s)

-- create_schema --
-- The saver's schema.
CREATE SCHEMA IF NOT EXISTS {schema}

-- create_migrations_table --
-- The version table of postgres/migrations.
CREATE TABLE IF NOT EXISTS {schema}.persist_kit_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)

-- select_migrations --
-- Versions already applied.
SELECT version FROM {schema}.persist_kit_migrations ORDER BY version

-- insert_migration --
-- Record one applied migration, in the transaction that applied it.
INSERT INTO {schema}.persist_kit_migrations (version, name, applied_at) VALUES (%s, %s, %s)

-- select_checkpoints --
-- Checkpoint rows matching {where}, newest first, then every channel value and
-- pending write they need: one round trip. Row layout: see SqlPlans.
WITH cp AS MATERIALIZED (
    SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
           channel_versions, metadata
    FROM {schema}.checkpoints
    WHERE {where}
    ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC
    LIMIT %(limit)s
)
SELECT 0, thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
       channel_versions::text, metadata::text, NULL::int
FROM cp
UNION ALL
SELECT 1, v.thread_id, v.checkpoint_ns, v.channel, v.version::text, v.type, v.value,
       NULL, NULL, NULL
FROM (
    SELECT DISTINCT cp.thread_id, cp.checkpoint_ns, je.key, je.value
    FROM cp, jsonb_each(cp.channel_versions) AS je
) AS k
-- one primary-key lookup per distinct (channel, version): the planner cannot
-- estimate jsonb_each and would otherwise hash-join a scan of the whole table
CROSS JOIN LATERAL (
    SELECT x.thread_id, x.checkpoint_ns, x.channel, x.version, x.type, x.value
    FROM {schema}.channel_values AS x
    WHERE x.thread_id = k.thread_id AND x.checkpoint_ns = k.checkpoint_ns
      AND x.channel = k.key AND x.version = k.value
    LIMIT 1  -- the key is unique; LIMIT keeps the planner from flattening this into a scan
) AS v
UNION ALL
SELECT 2, w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.type, w.value,
       w.channel, w.task_path, w.idx
FROM cp JOIN {schema}.writes AS w
  ON w.thread_id = cp.thread_id AND w.checkpoint_ns = cp.checkpoint_ns
 AND w.checkpoint_id = cp.checkpoint_id

-- insert_checkpoint --
-- A checkpoint, its new channel values and the registry row, in one statement.
-- {head} moves the registry row first (head_any, or one of the compare-and-set
-- heads of a versioned run); the checkpoint and its values are stored only if it
-- returned a row. Returns the number of checkpoints stored (0 or 1).
WITH head AS (
{head}
), new_values AS (
    INSERT INTO {schema}.channel_values AS cv
        (thread_id, checkpoint_ns, channel, version, type, value)
    SELECT %(thread_id)s, %(checkpoint_ns)s, v.channel, v.version::jsonb, v.type, v.value
    FROM unnest(%(channels)s::text[], %(versions)s::text[], %(types)s::text[],
                %(values)b::bytea[]) AS v (channel, version, type, value)
    WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (thread_id, checkpoint_ns, channel, version)
    DO UPDATE SET type = excluded.type, value = excluded.value
), new_checkpoint AS (
    INSERT INTO {schema}.checkpoints (
        thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
        channel_versions, metadata, run_id, created_at
    )
    SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(parent_checkpoint_id)s,
           %(type)s, %(checkpoint)b, %(channel_versions)s::jsonb, %(metadata)s::jsonb,
           %(run_id)s, now()
    WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type,
        checkpoint = excluded.checkpoint, channel_versions = excluded.channel_versions,
        metadata = excluded.metadata, run_id = excluded.run_id, created_at = excluded.created_at
)
SELECT count(*) FROM head

-- head_any --
-- The registry row after any put: last-write time, and the latest root
-- checkpoint with its metadata when this one is newer.
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
VALUES (
    %(thread_id)s, now(), now(),
    CASE WHEN %(checkpoint_ns)s::text = '' THEN %(checkpoint_id)s::text END,
    CASE WHEN %(checkpoint_ns)s::text = '' THEN %(metadata)s::jsonb END
)
ON CONFLICT (thread_id) DO UPDATE SET
    updated_at = greatest(t.updated_at, excluded.updated_at),
    metadata = CASE WHEN excluded.latest_checkpoint_id >= coalesce(t.latest_checkpoint_id, '')
                    THEN excluded.metadata ELSE t.metadata END,
    latest_checkpoint_id = CASE
        WHEN excluded.latest_checkpoint_id >= coalesce(t.latest_checkpoint_id, '')
        THEN excluded.latest_checkpoint_id ELSE t.latest_checkpoint_id END
RETURNING 1

-- head_after_parent --
-- A versioned run's root checkpoint: moves the head only if it still is the parent
-- (or already is this checkpoint: a put retried after its reply was lost).
-- UPDATE locks the row; a racing put with the same parent waits, then re-reads the
-- row (READ COMMITTED re-checks WHERE on the newest version) and updates nothing.
UPDATE {schema}.threads AS t SET
    updated_at = greatest(t.updated_at, now()),
    latest_checkpoint_id = %(checkpoint_id)s, metadata = %(metadata)s::jsonb
WHERE t.thread_id = %(thread_id)s
  AND t.latest_checkpoint_id IN (%(parent_checkpoint_id)s, %(checkpoint_id)s)
RETURNING 1

-- head_first --
-- A versioned run's first root checkpoint of a thread: only while it has none. Of
-- two racing inserts, the second meets the first's row and its WHERE is false.
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
VALUES (%(thread_id)s, now(), now(), %(checkpoint_id)s, %(metadata)s::jsonb)
ON CONFLICT (thread_id) DO UPDATE SET
    updated_at = greatest(t.updated_at, excluded.updated_at),
    latest_checkpoint_id = excluded.latest_checkpoint_id, metadata = excluded.metadata
WHERE t.latest_checkpoint_id IS NULL OR t.latest_checkpoint_id = %(checkpoint_id)s
RETURNING 1

-- insert_writes --
-- A task's pending writes and the registry's last-write time, in one statement.
-- A regular write (idx >= 0) already stored is kept; a special one is replaced.
WITH new_writes AS (
    INSERT INTO {schema}.writes AS w (
        thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
        task_path, created_at
    )
    SELECT %(thread_id)s, %(checkpoint_ns)s, %(checkpoint_id)s, %(task_id)s, r.idx, r.channel,
           r.type, r.value, %(task_path)s, now()
    FROM unnest(%(idxs)s::int[], %(channels)s::text[], %(types)s::text[],
                %(values)b::bytea[]) AS r (idx, channel, type, value)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        channel = excluded.channel, type = excluded.type, value = excluded.value,
        task_path = excluded.task_path, created_at = excluded.created_at
    WHERE excluded.idx < 0
    RETURNING 1
)
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at)
SELECT %(thread_id)s, now(), now() WHERE EXISTS (SELECT 1 FROM new_writes)
ON CONFLICT (thread_id) DO UPDATE SET updated_at = greatest(t.updated_at, excluded.updated_at)

-- select_latest_checkpoint_id --
-- The newest checkpoint id of one namespace of a thread.
SELECT max(checkpoint_id) FROM {schema}.checkpoints
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s

-- walk_ancestors --
-- The checkpoint %(checkpoint_id)s and up to %(depth)s ancestors, nearest first,
-- with the version and value type of each of %(channels)s at each of them.
WITH RECURSIVE chain (depth, checkpoint_id, parent_checkpoint_id, channel_versions) AS (
    SELECT 0, checkpoint_id, parent_checkpoint_id, channel_versions
    FROM {schema}.checkpoints
    WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
      AND checkpoint_id = %(checkpoint_id)s
    UNION ALL
    SELECT chain.depth + 1, c.checkpoint_id, c.parent_checkpoint_id, c.channel_versions
    FROM chain JOIN {schema}.checkpoints AS c
      ON c.thread_id = %(thread_id)s AND c.checkpoint_ns = %(checkpoint_ns)s
     AND c.checkpoint_id = chain.parent_checkpoint_id
    WHERE chain.depth < %(depth)s
)
SELECT chain.depth, chain.checkpoint_id, chain.parent_checkpoint_id, je.key, je.value::text,
       v.type
FROM chain
LEFT JOIN LATERAL jsonb_each(chain.channel_versions) AS je
       ON je.key = ANY(%(channels)s::text[])
LEFT JOIN LATERAL (  -- a primary-key lookup per (channel, version); see select_checkpoints
    SELECT x.type FROM {schema}.channel_values AS x
    WHERE x.thread_id = %(thread_id)s AND x.checkpoint_ns = %(checkpoint_ns)s
      AND x.channel = je.key AND x.version = je.value
    LIMIT 1
) AS v ON TRUE
ORDER BY chain.depth

-- select_delta_history --
-- Seed values and the pending writes of %(checkpoint_ids)s on %(channels)s.
SELECT 0, channel, version::text, type, value, NULL::text, NULL::int, NULL::text
FROM {schema}.channel_values
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND (channel, version) IN (
      SELECT s.channel, s.version::jsonb
      FROM unnest(%(seed_channels)s::text[], %(seed_versions)s::text[]) AS s (channel, version))
UNION ALL
SELECT 1, checkpoint_id, channel, type, value, task_id, idx, task_path
FROM {schema}.writes
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND checkpoint_id = ANY(%(checkpoint_ids)s::text[]) AND channel = ANY(%(channels)s::text[])

-- select_threads --
-- The registry, newest-updated first, rows matching {where}.
SELECT thread_id, created_at, updated_at, metadata::text
FROM {schema}.threads
WHERE {where}
ORDER BY updated_at DESC, thread_id DESC
LIMIT %(limit)s

-- lock_threads --
-- Lock the registry rows of %(thread_ids)s until the transaction ends: a put or
-- put_writes on those threads updates the same row, so it waits for a delete,
-- copy or prune to finish instead of interleaving with it.
SELECT 1 FROM {schema}.threads WHERE thread_id = ANY(%(thread_ids)s::text[])
ORDER BY thread_id FOR UPDATE

-- delete_thread_checkpoints --
-- Every checkpoint of %(thread_id)s.
DELETE FROM {schema}.checkpoints WHERE thread_id = %(thread_id)s

-- delete_thread_writes --
-- Every pending write of %(thread_id)s.
DELETE FROM {schema}.writes WHERE thread_id = %(thread_id)s

-- delete_thread_channel_values --
-- Every channel value of %(thread_id)s.
DELETE FROM {schema}.channel_values WHERE thread_id = %(thread_id)s

-- delete_thread_registry --
-- The registry row of %(thread_id)s.
DELETE FROM {schema}.threads WHERE thread_id = %(thread_id)s

-- copy_thread_channel_values --
-- The channel values of %(source)s, stored again under %(target)s.
INSERT INTO {schema}.channel_values (thread_id, checkpoint_ns, channel, version, type, value)
SELECT %(target)s, checkpoint_ns, channel, version, type, value
FROM {schema}.channel_values WHERE thread_id = %(source)s
ON CONFLICT (thread_id, checkpoint_ns, channel, version)
DO UPDATE SET type = excluded.type, value = excluded.value

-- copy_thread_checkpoints --
-- The checkpoints of %(source)s, stored again under %(target)s.
INSERT INTO {schema}.checkpoints (
    thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
    channel_versions, metadata, run_id, created_at
)
SELECT %(target)s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
       channel_versions, metadata, run_id, now()
FROM {schema}.checkpoints WHERE thread_id = %(source)s
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type,
    checkpoint = excluded.checkpoint, channel_versions = excluded.channel_versions,
    metadata = excluded.metadata, run_id = excluded.run_id, created_at = excluded.created_at

-- copy_thread_writes --
-- The pending writes of %(source)s, stored again under %(target)s.
INSERT INTO {schema}.writes (
    thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
    task_path, created_at
)
SELECT %(target)s, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
       task_path, now()
FROM {schema}.writes WHERE thread_id = %(source)s
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
    channel = excluded.channel, type = excluded.type, value = excluded.value,
    task_path = excluded.task_path, created_at = excluded.created_at

-- copy_thread_registry --
-- The registry row of %(target)s after a copy from %(source)s.
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
SELECT %(target)s, now(), now(), latest_checkpoint_id, metadata
FROM {schema}.threads WHERE thread_id = %(source)s
ON CONFLICT (thread_id) DO UPDATE SET
    updated_at = excluded.updated_at,
    metadata = CASE WHEN excluded.latest_checkpoint_id >= coalesce(t.latest_checkpoint_id, '')
                    THEN excluded.metadata ELSE t.metadata END,
    latest_checkpoint_id = CASE
        WHEN excluded.latest_checkpoint_id >= coalesce(t.latest_checkpoint_id, '')
        THEN excluded.latest_checkpoint_id ELSE t.latest_checkpoint_id END

-- select_run_threads --
-- Threads that hold a checkpoint of one of %(run_ids)s.
SELECT DISTINCT thread_id FROM {schema}.checkpoints WHERE run_id = ANY(%(run_ids)s::text[])

-- delete_run_writes --
-- Pending writes of the checkpoints of %(run_ids)s.
DELETE FROM {schema}.writes AS w
USING {schema}.checkpoints AS c
WHERE c.run_id = ANY(%(run_ids)s::text[]) AND w.thread_id = c.thread_id
  AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id

-- delete_run_checkpoints --
-- Checkpoints of %(run_ids)s.
DELETE FROM {schema}.checkpoints WHERE run_id = ANY(%(run_ids)s::text[])

-- select_thread_checkpoints --
-- Every checkpoint of %(thread_id)s: namespace and id (what prune decides on).
SELECT checkpoint_ns, checkpoint_id FROM {schema}.checkpoints WHERE thread_id = %(thread_id)s

-- select_checkpoint_metadata --
-- Namespace, id and metadata of the checkpoints of %(thread_id)s whose id is in
-- %(checkpoint_ids)s.
SELECT checkpoint_ns, checkpoint_id, metadata::text FROM {schema}.checkpoints
WHERE thread_id = %(thread_id)s AND checkpoint_id = ANY(%(checkpoint_ids)s::text[])

-- delete_checkpoints_except --
-- Checkpoints of one namespace of a thread older than %(latest)s, except %(keep)s.
DELETE FROM {schema}.checkpoints
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND checkpoint_id < %(latest)s AND checkpoint_id <> ALL(%(keep)s::text[])

-- delete_writes_except --
-- Pending writes of checkpoints older than %(latest)s, except those of %(keep)s.
DELETE FROM {schema}.writes
WHERE thread_id = %(thread_id)s AND checkpoint_ns = %(checkpoint_ns)s
  AND checkpoint_id < %(latest)s AND checkpoint_id <> ALL(%(keep)s::text[])

-- delete_unreferenced_channel_values --
-- Channel values of %(thread_ids)s that no checkpoint refers to any more.
-- (The referenced set is built once and hash-joined, not rescanned per value row.)
WITH referenced AS MATERIALIZED (
    SELECT DISTINCT c.thread_id, c.checkpoint_ns, je.key AS channel, je.value AS version
    FROM {schema}.checkpoints AS c, jsonb_each(c.channel_versions) AS je
    WHERE c.thread_id = ANY(%(thread_ids)s::text[])
)
DELETE FROM {schema}.channel_values AS v
WHERE v.thread_id = ANY(%(thread_ids)s::text[])
  AND NOT EXISTS (
      SELECT 1 FROM referenced AS r
      WHERE r.thread_id = v.thread_id AND r.checkpoint_ns = v.checkpoint_ns
        AND r.channel = v.channel AND r.version = v.version)

-- refresh_threads --
-- Recompute the latest root checkpoint and metadata of %(thread_ids)s.
UPDATE {schema}.threads AS t SET (latest_checkpoint_id, metadata) = (
    SELECT c.checkpoint_id, c.metadata FROM {schema}.checkpoints AS c
    WHERE c.thread_id = t.thread_id AND c.checkpoint_ns = ''
    ORDER BY c.checkpoint_id DESC LIMIT 1)
WHERE t.thread_id = ANY(%(thread_ids)s::text[])

-- delete_empty_threads --
-- Registry rows of %(thread_ids)s that no longer hold anything.
DELETE FROM {schema}.threads AS t
WHERE t.thread_id = ANY(%(thread_ids)s::text[])
  AND NOT EXISTS (SELECT 1 FROM {schema}.checkpoints AS c WHERE c.thread_id = t.thread_id)
  AND NOT EXISTS (SELECT 1 FROM {schema}.writes AS w WHERE w.thread_id = t.thread_id)

-- delete_fork_checkpoints --
-- After a thread was copied to %(thread_id)s to fork it at root checkpoint %(tip)s:
-- the root checkpoints off the tip's chain %(keep)s, and the subgraph checkpoints
-- made under a root checkpoint off it (metadata "parents"."").
DELETE FROM {schema}.checkpoints
WHERE thread_id = %(thread_id)s
  AND ((checkpoint_ns = '' AND checkpoint_id <> ALL(%(keep)s::text[]))
       OR (checkpoint_ns <> ''
           AND coalesce(metadata -> 'parents' ->> '', '') <> ALL(%(keep)s::text[])))

-- delete_fork_writes --
-- Then the pending writes of %(thread_id)s whose checkpoint is gone.
DELETE FROM {schema}.writes AS w
WHERE w.thread_id = %(thread_id)s
  AND NOT EXISTS (SELECT 1 FROM {schema}.checkpoints AS c
                  WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns
                    AND c.checkpoint_id = w.checkpoint_id)

-- delete_fork_task_writes --
-- For a fork taken where the source had moved on: on the newest checkpoint of each
-- namespace of %(thread_id)s, the pending writes that are neither interrupts, errors
-- nor task-less (%(null_task)s, answers excepted): the fork waits there again.
DELETE FROM {schema}.writes AS w
WHERE w.thread_id = %(thread_id)s
  AND w.channel NOT IN ('__interrupt__', '__error__')
  AND (w.task_id <> %(null_task)s OR w.channel = '__resume__')
  AND w.checkpoint_id = (SELECT max(c.checkpoint_id) FROM {schema}.checkpoints AS c
                         WHERE c.thread_id = w.thread_id
                           AND c.checkpoint_ns = w.checkpoint_ns)

-- select_parent_links --
-- Every root checkpoint of %(thread_id)s with its parent, for fork_thread's chain.
SELECT checkpoint_id, parent_checkpoint_id FROM {schema}.checkpoints
WHERE thread_id = %(thread_id)s AND checkpoint_ns = ''

-- select_idle_threads --
-- Up to %(limit)s threads after %(after)s (by id) whose newest checkpoint or
-- pending write is older than %(cutoff)s: cleanup_expired's candidates.
SELECT thread_id FROM {schema}.threads
WHERE updated_at < %(cutoff)s AND thread_id > %(after)s
ORDER BY thread_id LIMIT %(limit)s

-- select_still_idle --
-- Of %(thread_ids)s, those still idle at %(cutoff)s, with their number of
-- checkpoints; locks their registry rows, so a put on them waits for the delete
-- (and one that came first makes the thread not idle any more).
SELECT t.thread_id,
       (SELECT count(*) FROM {schema}.checkpoints AS c WHERE c.thread_id = t.thread_id)
FROM {schema}.threads AS t
WHERE t.thread_id = ANY(%(thread_ids)s::text[]) AND t.updated_at < %(cutoff)s
ORDER BY t.thread_id FOR UPDATE OF t

-- delete_threads_writes --
-- Every pending write of %(thread_ids)s.
DELETE FROM {schema}.writes WHERE thread_id = ANY(%(thread_ids)s::text[])

-- delete_threads_checkpoints --
DELETE FROM {schema}.checkpoints WHERE thread_id = ANY(%(thread_ids)s::text[])

-- delete_threads_channel_values --
DELETE FROM {schema}.channel_values WHERE thread_id = ANY(%(thread_ids)s::text[])

-- delete_threads_registry --
DELETE FROM {schema}.threads WHERE thread_id = ANY(%(thread_ids)s::text[])

-- select_stats --
-- Rows of each table and the bytes of the schema's tables (with indexes and TOAST).
SELECT (SELECT count(*) FROM {schema}.threads), (SELECT count(*) FROM {schema}.checkpoints),
       (SELECT count(*) FROM {schema}.writes), (SELECT count(*) FROM {schema}.channel_values),
       (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema_name)s AND c.relkind = 'r')

-- select_thread_ids --
-- Up to %(limit)s thread ids after %(after)s, in id order (prune_threads pages through them).
SELECT thread_id FROM {schema}.threads WHERE thread_id > %(after)s
ORDER BY thread_id LIMIT %(limit)s

-- count_threads --
SELECT count(*) FROM {schema}.threads
