-- Per device, the event time up to which the coordinator last requested a retrain, so a
-- restarted coordinator keeps the schedule instead of starting the clock again (which skipped a
-- retrain in the cluster fault matrix).
CREATE TABLE retrain_clock (
    device          integer NOT NULL PRIMARY KEY,
    requested_until bigint  NOT NULL
);
