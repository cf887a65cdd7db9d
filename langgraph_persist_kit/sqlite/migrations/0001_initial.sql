-- The first schema: a thread registry, checkpoints, channel values stored once
-- per (thread, namespace, channel, version), and pending writes.

CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,            -- Unix seconds of the first stored row
    updated_at REAL NOT NULL,            -- Unix seconds of the newest checkpoint or write
    latest_checkpoint_id TEXT,           -- newest root (checkpoint_ns = '') checkpoint
    metadata TEXT                        -- its metadata, JSON
) WITHOUT ROWID;

CREATE INDEX threads_by_updated_at ON threads (updated_at, thread_id);

CREATE TABLE checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT NOT NULL,                  -- serde type tag of the body
    checkpoint BLOB NOT NULL,            -- body without channel values and versions
    channel_versions TEXT NOT NULL,      -- JSON {channel: version}
    metadata TEXT NOT NULL,              -- JSON, canonical (sorted keys)
    run_id TEXT,                         -- metadata.run_id, for delete_for_runs
    created_at REAL NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);

CREATE INDEX checkpoints_by_run_id ON checkpoints (run_id) WHERE run_id IS NOT NULL;

CREATE TABLE channel_values (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    channel TEXT NOT NULL,
    version NOT NULL,                    -- no affinity: ints, floats and strings stay as given
    type TEXT NOT NULL,                  -- serde type tag, or 'empty'
    value BLOB NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    value BLOB NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- The registry is kept by triggers so that every path that stores rows
-- (put, put_writes, copy_thread, import) keeps it right in the same statement.
CREATE TRIGGER checkpoints_register_thread AFTER INSERT ON checkpoints
BEGIN
    INSERT INTO threads (thread_id, created_at, updated_at, latest_checkpoint_id, metadata)
    VALUES (
        NEW.thread_id, NEW.created_at, NEW.created_at,
        iif(NEW.checkpoint_ns = '', NEW.checkpoint_id, NULL),
        iif(NEW.checkpoint_ns = '', NEW.metadata, NULL)
    )
    ON CONFLICT (thread_id) DO UPDATE SET
        updated_at = max(updated_at, excluded.updated_at),
        metadata = iif(
            excluded.latest_checkpoint_id >= coalesce(latest_checkpoint_id, ''),
            excluded.metadata, metadata),
        latest_checkpoint_id = iif(
            excluded.latest_checkpoint_id >= coalesce(latest_checkpoint_id, ''),
            excluded.latest_checkpoint_id, latest_checkpoint_id);
END;

CREATE TRIGGER writes_register_thread AFTER INSERT ON writes
BEGIN
    INSERT INTO threads (thread_id, created_at, updated_at)
    VALUES (NEW.thread_id, NEW.created_at, NEW.created_at)
    ON CONFLICT (thread_id) DO UPDATE SET updated_at = max(updated_at, excluded.updated_at);
END;

CREATE TRIGGER writes_replaced_register_thread AFTER UPDATE ON writes
BEGIN
    UPDATE threads SET updated_at = max(updated_at, NEW.created_at)
    WHERE thread_id = NEW.thread_id;
END;
