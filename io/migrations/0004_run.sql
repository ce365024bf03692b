-- What the run was: the experiment's spec as it ran (for reports that read only the store), and
-- what running it cost where it can be measured (`wattcast local`: the whole process).
CREATE TABLE run (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),   -- one row
    experiment      text    NOT NULL,
    spec            jsonb   NOT NULL,
    started_ms      bigint  NOT NULL,
    finished_ms     bigint,
    cpu_seconds     double precision,
    peak_rss_bytes  bigint
);
