-- host_ips is keyed (ip, host) for the by-address search; replacing a
-- host's glue deletes by host, which without this index scanned the whole
-- table (an import of 100k domains spent most of its time there).
CREATE INDEX host_ips_host ON host_ips (host);
