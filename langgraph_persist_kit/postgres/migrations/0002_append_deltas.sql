-- Append-delta storage (_core/deltas.py): a channel value of type 'append' holds
-- only the items its version appended to base_version of the same channel;
-- position is its place in the chain of pieces, items the number of items of the
-- whole list. Rows stored before this migration are whole values (all NULL).
-- Adding NULL columns and a NOT VALID constraint rewrites nothing. The foreign key
-- makes a piece's base version outlive it: a put racing a delete of its base fails
-- (and is retried whole) instead of storing a piece nothing can rebuild.
ALTER TABLE {schema}.channel_values
    ADD COLUMN base_version JSONB,
    ADD COLUMN position INTEGER,
    ADD COLUMN items INTEGER;
CREATE INDEX channel_values_by_base ON {schema}.channel_values
    (thread_id, checkpoint_ns, channel, base_version) WHERE base_version IS NOT NULL;
ALTER TABLE {schema}.channel_values ADD CONSTRAINT channel_values_base_version_fkey
    FOREIGN KEY (thread_id, checkpoint_ns, channel, base_version)
    REFERENCES {schema}.channel_values (thread_id, checkpoint_ns, channel, version)
    NOT VALID;
