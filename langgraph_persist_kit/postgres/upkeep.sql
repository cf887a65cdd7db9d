-- Deletes, copies, forks, pruning, cleanup and stats of the Postgres savers, by
-- name (run by _sql/upkeep.py and _sql/plans.py, each in one transaction); the
-- same names and parameter names as sqlite/upkeep.sql. {schema} as in queries.sql.

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
-- The channel values of %(source)s, stored again under %(target)s (pieces with the
-- versions they extend; a version the target holds already is kept).
INSERT INTO {schema}.channel_values (
    thread_id, checkpoint_ns, channel, version, type, value, base_version, position, items
)
SELECT %(target)s, checkpoint_ns, channel, version, type, value, base_version, position, items
FROM {schema}.channel_values WHERE thread_id = %(source)s
ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING

-- copy_thread_checkpoints --
-- The checkpoints of %(source)s, stored again under %(target)s. A metadata
-- "thread_id" names the target (as the Agent Server's own copy does); run_id stays
-- in the metadata but not in its column, so delete_for_runs of the source's runs
-- leaves the copy alone.
INSERT INTO {schema}.checkpoints (
    thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
    channel_versions, metadata, run_id, created_at
)
SELECT %(target)s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
       channel_versions,
       CASE WHEN metadata ? 'thread_id'
            THEN jsonb_set(metadata, '{thread_id}', to_jsonb(%(target)s::text))
            ELSE metadata END,
       NULL, now()
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
-- The registry row of %(target)s after a copy from %(source)s: the metadata of its
-- latest root checkpoint as copy_thread_checkpoints stored it.
INSERT INTO {schema}.threads AS t (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
SELECT %(target)s, now(), now(), s.latest_checkpoint_id, c.metadata
FROM {schema}.threads AS s
LEFT JOIN {schema}.checkpoints AS c
       ON c.thread_id = %(target)s AND c.checkpoint_ns = '' AND c.checkpoint_id = s.latest_checkpoint_id
WHERE s.thread_id = %(source)s
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
-- Channel values of %(thread_ids)s that no checkpoint refers to any more, directly
-- or as a version a referred piece extends (append-delta storage).
-- (The referenced set is built once and hash-joined, not rescanned per value row.)
WITH RECURSIVE referenced (thread_id, checkpoint_ns, channel, version) AS (
    SELECT DISTINCT c.thread_id, c.checkpoint_ns, je.key COLLATE "C", je.value
    FROM {schema}.checkpoints AS c, jsonb_each(c.channel_versions) AS je
    WHERE c.thread_id = ANY(%(thread_ids)s::text[])
    UNION
    SELECT p.thread_id, p.checkpoint_ns, p.channel, p.base_version
    FROM referenced AS r JOIN {schema}.channel_values AS p
      ON p.thread_id = r.thread_id AND p.checkpoint_ns = r.checkpoint_ns
     AND p.channel = r.channel AND p.version = r.version
    WHERE p.base_version IS NOT NULL
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

-- select_thread_stats --
-- One thread's checkpoints (count, stored bytes of bodies, versions and metadata:
-- pg_column_size, after compression) and pending writes (count, stored bytes of values).
SELECT (SELECT count(*) FROM {schema}.checkpoints WHERE thread_id = %(thread_id)s),
       (SELECT coalesce(sum(pg_column_size(checkpoint) + pg_column_size(channel_versions)
                            + pg_column_size(metadata)), 0)::bigint
        FROM {schema}.checkpoints WHERE thread_id = %(thread_id)s),
       (SELECT count(*) FROM {schema}.writes WHERE thread_id = %(thread_id)s),
       (SELECT coalesce(sum(pg_column_size(value)), 0)::bigint
        FROM {schema}.writes WHERE thread_id = %(thread_id)s)

-- select_thread_channel_stats --
-- One thread's stored channel values: namespace, channel, version, the version a
-- piece extends, stored bytes (after compression), items and bytes before
-- compression, and the first byte of a whole value stored without items (stats adds
-- them up per channel, stored and rebuilt).
SELECT checkpoint_ns, channel, version::text, base_version::text, pg_column_size(value),
       items, octet_length(value),
       CASE WHEN items IS NULL AND base_version IS NULL THEN substring(value FROM 1 FOR 1) END
FROM {schema}.channel_values WHERE thread_id = %(thread_id)s

-- select_thread_ids --
-- Up to %(limit)s thread ids after %(after)s, in id order (prune_threads pages through them).
SELECT thread_id FROM {schema}.threads WHERE thread_id > %(after)s
ORDER BY thread_id LIMIT %(limit)s

-- count_threads --
SELECT count(*) FROM {schema}.threads
