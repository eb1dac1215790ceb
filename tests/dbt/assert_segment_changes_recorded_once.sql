-- A customer enters or exits a segment at most once per refresh: the segment rows of
-- marts.customer_timeline are unique (its other rows are, by a unique index on
-- intermediate.int_timeline_events). Returns the repeated changes.
select
    segment,
    customer_id,
    change,
    changed_at,
    count(*) as times
from {{ ref('stg_segments__membership_changes') }}
group by segment, customer_id, change, changed_at
having count(*) > 1
