-- The CDS/CDNSKEY scanner's bootstrap observations (scanner state, not
-- registry data: no history, feed or last update). `rec` is the postcard
-- CdsSighting, as in the redb backend.
CREATE TABLE cds_sightings (
    name text COLLATE "C" PRIMARY KEY,
    rec  bytea NOT NULL
);
