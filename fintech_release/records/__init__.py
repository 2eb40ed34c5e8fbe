"""What the event log records, named and queried in one place: asset keys and run tags, reads of
materializations, candidates and approvals, build numbers. Below assets, jobs and triggers; imports only config."""
