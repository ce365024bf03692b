-- A window's seconds move into its `windows` row as arrays, and `readings` becomes a view that
-- unnests them with the same columns as before. One row and one index entry per window instead
-- of sixty: at the minute boundary thousands of windows are stored at once, and PostgreSQL's
-- per-row cost of the reading rows (heap tuple, primary-key entry) was most of the pipeline's.
--
-- Element i (from 1) of each array is the second window_start + i - 1; a stored window holds
-- every second of it (measured or imputed), so the arrays are as long as `expected`.
ALTER TABLE windows
    ADD COLUMN power_w      double precision[] NOT NULL DEFAULT '{}',
    ADD COLUMN imputed      boolean[]          NOT NULL DEFAULT '{}',
    ADD COLUMN published_ms bigint[]           NOT NULL DEFAULT '{}', -- NULL for imputed seconds
    -- When a redelivered window replaced an imputed second with a measured one, when that was
    -- stored (NULL or past the end: the second was stored with the window, at stored_ms).
    ADD COLUMN restored_ms  bigint[]           NOT NULL DEFAULT '{}';

UPDATE windows w
SET power_w = r.power_w, imputed = r.imputed, published_ms = r.published_ms, restored_ms = r.restored_ms
FROM (
    SELECT w.device, w.window_start,
           array_agg(r.power_w ORDER BY r.event_time) AS power_w,
           array_agg(r.imputed ORDER BY r.event_time) AS imputed,
           array_agg(r.published_ms ORDER BY r.event_time) AS published_ms,
           array_agg(NULLIF(r.stored_ms, w.stored_ms) ORDER BY r.event_time) AS restored_ms
    FROM windows w
    JOIN readings r ON r.device = w.device
         AND r.event_time >= w.window_start AND r.event_time < w.window_end
    GROUP BY w.device, w.window_start
) AS r
WHERE w.device = r.device AND w.window_start = r.window_start;

DROP TABLE readings;

-- Every second of every stored window: measured readings and imputed fillers.
CREATE VIEW readings AS
SELECT w.device,
       w.window_start + s.second - 1 AS event_time,
       s.power_w,
       s.imputed,
       s.published_ms,
       coalesce(s.restored_ms, w.stored_ms) AS stored_ms
FROM windows w
CROSS JOIN LATERAL unnest(w.power_w, w.imputed, w.published_ms, w.restored_ms)
     WITH ORDINALITY AS s(power_w, imputed, published_ms, restored_ms, second)
WHERE s.power_w IS NOT NULL;

-- How the coordinator hands a batch of windows to one INSERT: an array of these.
CREATE TYPE window_row AS (
    device       integer,
    window_start bigint,
    window_end   bigint,
    received     integer,
    expected     integer,
    emitted_ms   bigint,
    power_w      double precision[],
    imputed      boolean[],
    published_ms bigint[]
);
