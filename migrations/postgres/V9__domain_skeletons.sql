-- The look-alike index behind the zone policies' confusable rule: each
-- registered name under its key (zone and Unicode TR39 skeleton, computed
-- by zonekeeper, crate::names::skeleton_index_key). Derived data: filled
-- for existing names on open, and rebuilt whenever zk_meta's
-- 'skeleton_index' names another skeleton algorithm. (Numbered apart from
-- the other migrations of this release; refinery allows gaps.)
CREATE TABLE domain_skeletons (
    skeleton text COLLATE "C" NOT NULL,
    name     text COLLATE "C" NOT NULL,
    PRIMARY KEY (skeleton, name)
);
