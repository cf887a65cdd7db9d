-- Deletes, copies, forks, pruning, cleanup and stats of the SQLite savers, by
-- name (run by _sql/upkeep.py and _sql/plans.py, each in one transaction); the
-- same names and parameter names as postgres/upkeep.sql.

-- delete_thread_checkpoints --
-- Every checkpoint of :thread_id.
DELETE FROM checkpoints WHERE thread_id = :thread_id

-- delete_thread_writes --
-- Every pending write of :thread_id.
DELETE FROM writes WHERE thread_id = :thread_id

-- delete_thread_channel_values --
-- Every channel value of :thread_id.
DELETE FROM channel_values WHERE thread_id = :thread_id

-- delete_thread_registry --
-- The registry row of :thread_id.
DELETE FROM threads WHERE thread_id = :thread_id

-- copy_thread_channel_values --
-- The channel values of :source, stored again under :target (pieces with the
-- versions they extend; a version the target holds already is kept).
INSERT OR IGNORE INTO channel_values (
    thread_id, checkpoint_ns, channel, version, type, value, base_version, position, items
)
SELECT :target, checkpoint_ns, channel, version, type, value, base_version, position, items
FROM channel_values WHERE thread_id = :source

-- copy_thread_checkpoints --
-- The checkpoints of :source, stored again under :target at :now. A metadata
-- "thread_id" names the target (as the Agent Server's own copy does); run_id stays
-- in the metadata but not in its column, so delete_for_runs of the source's runs
-- leaves the copy alone.
INSERT OR REPLACE INTO checkpoints (
    thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
    channel_versions, metadata, run_id, created_at
)
SELECT :target, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,
       channel_versions,
       iif(json_type(metadata, '$.thread_id') IS NULL, metadata,
           json_set(metadata, '$.thread_id', :target)),
       NULL, :now
FROM checkpoints WHERE thread_id = :source
ORDER BY checkpoint_ns, checkpoint_id

-- copy_thread_writes --
-- The pending writes of :source, stored again under :target at :now.
INSERT OR REPLACE INTO writes (
    thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value,
    task_path, created_at
)
SELECT :target, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value, task_path, :now
FROM writes WHERE thread_id = :source

-- select_run_threads --
-- Threads that hold a checkpoint of one of :run_ids (JSON array).
SELECT DISTINCT thread_id FROM checkpoints
WHERE run_id IN (SELECT value FROM json_each(:run_ids))

-- delete_run_writes --
-- Pending writes of the checkpoints of :run_ids (JSON array).
DELETE FROM writes
WHERE (thread_id, checkpoint_ns, checkpoint_id) IN (
    SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints
    WHERE run_id IN (SELECT value FROM json_each(:run_ids)))

-- delete_run_checkpoints --
-- Checkpoints of :run_ids (JSON array).
DELETE FROM checkpoints WHERE run_id IN (SELECT value FROM json_each(:run_ids))

-- select_thread_checkpoints --
-- Every checkpoint of :thread_id: namespace and id (what prune decides on).
SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = :thread_id

-- select_checkpoint_metadata --
-- Namespace, id and metadata of the checkpoints of :thread_id whose id is in
-- :checkpoint_ids (JSON array).
SELECT checkpoint_ns, checkpoint_id, metadata FROM checkpoints
WHERE thread_id = :thread_id AND checkpoint_id IN (SELECT value FROM json_each(:checkpoint_ids))

-- delete_checkpoints_except --
-- Checkpoints of one namespace of a thread older than :latest, except :keep (JSON
-- array of ids). Newer ids (saved since the prune looked) are never touched.
DELETE FROM checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND checkpoint_id < :latest AND checkpoint_id NOT IN (SELECT value FROM json_each(:keep))

-- delete_writes_except --
-- Pending writes of checkpoints older than :latest, except those of :keep. Writes
-- of newer checkpoints (LangGraph may store them before the checkpoint) stay.
DELETE FROM writes
WHERE thread_id = :thread_id AND checkpoint_ns = :checkpoint_ns
  AND checkpoint_id < :latest AND checkpoint_id NOT IN (SELECT value FROM json_each(:keep))

-- delete_unreferenced_channel_values --
-- Channel values of :thread_ids (JSON array) that no checkpoint refers to any more,
-- directly or as a version a referred piece extends (append-delta storage).
-- (Uncorrelated: the referenced set is built once, not once per value row.)
WITH RECURSIVE used (thread_id, checkpoint_ns, channel, version) AS (
    SELECT c.thread_id, c.checkpoint_ns, je.key, je.value
    FROM checkpoints AS c, json_each(c.channel_versions) AS je
    WHERE c.thread_id IN (SELECT value FROM json_each(:thread_ids))
    UNION
    SELECT p.thread_id, p.checkpoint_ns, p.channel, p.base_version
    FROM used AS u JOIN channel_values AS p
      ON p.thread_id = u.thread_id AND p.checkpoint_ns = u.checkpoint_ns
     AND p.channel = u.channel AND p.version = u.version
    WHERE p.type = 'append'
)
DELETE FROM channel_values
WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))
  AND (thread_id, checkpoint_ns, channel, version) NOT IN (SELECT * FROM used)

-- refresh_threads --
-- Recompute the latest root checkpoint and metadata of :thread_ids (JSON array).
UPDATE threads SET (latest_checkpoint_id, metadata) = (
    SELECT checkpoint_id, metadata FROM checkpoints AS c
    WHERE c.thread_id = threads.thread_id AND c.checkpoint_ns = ''
    ORDER BY checkpoint_id DESC LIMIT 1)
WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))

-- delete_empty_threads --
-- Registry rows of :thread_ids (JSON array) that no longer hold anything.
DELETE FROM threads
WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))
  AND NOT EXISTS (SELECT 1 FROM checkpoints AS c WHERE c.thread_id = threads.thread_id)
  AND NOT EXISTS (SELECT 1 FROM writes AS w WHERE w.thread_id = threads.thread_id)

-- delete_fork_checkpoints --
-- After a thread was copied to :thread_id to fork it at root checkpoint :tip: the
-- root checkpoints off the tip's chain :keep (JSON array), and the subgraph
-- checkpoints made under a root checkpoint off it (metadata "parents"."").
DELETE FROM checkpoints
WHERE thread_id = :thread_id
  AND ((checkpoint_ns = '' AND checkpoint_id NOT IN (SELECT value FROM json_each(:keep)))
       OR (checkpoint_ns <> ''
           AND coalesce(json_extract(metadata, '$.parents.""'), '')
               NOT IN (SELECT value FROM json_each(:keep))))

-- delete_fork_writes --
-- Then the pending writes of :thread_id whose checkpoint is gone.
DELETE FROM writes
WHERE thread_id = :thread_id
  AND NOT EXISTS (SELECT 1 FROM checkpoints AS c
                  WHERE c.thread_id = writes.thread_id AND c.checkpoint_ns = writes.checkpoint_ns
                    AND c.checkpoint_id = writes.checkpoint_id)

-- delete_fork_task_writes --
-- For a fork taken where the source had moved on: on the newest checkpoint of each
-- namespace of :thread_id, the pending writes that are neither interrupts, errors
-- nor task-less (:null_task, answers excepted): the fork waits there again.
DELETE FROM writes
WHERE thread_id = :thread_id
  AND channel NOT IN ('__interrupt__', '__error__')
  AND (task_id <> :null_task OR channel = '__resume__')
  AND checkpoint_id = (SELECT max(c.checkpoint_id) FROM checkpoints AS c
                       WHERE c.thread_id = writes.thread_id
                         AND c.checkpoint_ns = writes.checkpoint_ns)

-- select_parent_links --
-- Every root checkpoint of :thread_id with its parent, for fork_thread's chain.
SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints
WHERE thread_id = :thread_id AND checkpoint_ns = ''

-- select_idle_threads --
-- Up to :limit threads after :after (by id) whose newest checkpoint or pending
-- write is older than :cutoff (Unix seconds): cleanup_expired's candidates.
SELECT thread_id FROM threads
WHERE updated_at < :cutoff AND thread_id > :after
ORDER BY thread_id LIMIT :limit

-- select_still_idle --
-- Of :thread_ids (JSON array), those still idle at :cutoff, with their number of
-- checkpoints (run in the deleting transaction: a thread written meanwhile is left).
SELECT t.thread_id, (SELECT count(*) FROM checkpoints AS c WHERE c.thread_id = t.thread_id)
FROM threads AS t
WHERE t.thread_id IN (SELECT value FROM json_each(:thread_ids)) AND t.updated_at < :cutoff

-- delete_threads_writes --
-- Every pending write of :thread_ids (JSON array).
DELETE FROM writes WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))

-- delete_threads_checkpoints --
DELETE FROM checkpoints WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))

-- delete_threads_channel_values --
DELETE FROM channel_values WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))

-- delete_threads_registry --
DELETE FROM threads WHERE thread_id IN (SELECT value FROM json_each(:thread_ids))

-- select_stats --
-- Rows of each table and the file's size in bytes (pages in use).
SELECT (SELECT count(*) FROM threads), (SELECT count(*) FROM checkpoints),
       (SELECT count(*) FROM writes), (SELECT count(*) FROM channel_values),
       (SELECT (p.page_count - f.freelist_count) * s.page_size
        FROM pragma_page_count() AS p, pragma_freelist_count() AS f, pragma_page_size() AS s)

-- select_thread_stats --
-- One thread's checkpoints (count, bytes of bodies, versions and metadata) and pending
-- writes (count, bytes of values).
SELECT (SELECT count(*) FROM checkpoints WHERE thread_id = :thread_id),
       (SELECT coalesce(sum(length(checkpoint) + length(CAST(channel_versions AS BLOB))
                            + length(CAST(metadata AS BLOB))), 0)
        FROM checkpoints WHERE thread_id = :thread_id),
       (SELECT count(*) FROM writes WHERE thread_id = :thread_id),
       (SELECT coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = :thread_id)

-- select_thread_channel_stats --
-- One thread's stored channel values: namespace, channel, version, the version a
-- piece extends, stored bytes, items, bytes again, and the first byte of a whole
-- value stored without items (stats adds them up per channel, stored and rebuilt).
SELECT checkpoint_ns, channel, version, base_version, length(value), items, length(value),
       CASE WHEN items IS NULL AND base_version IS NULL THEN substr(value, 1, 1) END
FROM channel_values WHERE thread_id = :thread_id

-- select_thread_ids --
-- Up to :limit thread ids after :after, in id order (prune_threads pages through them).
SELECT thread_id FROM threads WHERE thread_id > :after ORDER BY thread_id LIMIT :limit

-- count_threads --
SELECT count(*) FROM threads
