with

source as (
    select * from {{ source('raw_helpdesk', 'tickets') }}
),

latest as (
    -- the latest version of each record. distinct on, not row_number() = 1: the planner
    -- estimates one row per id for it, but guesses 0.5% of rows for a rank filter and then
    -- picks nested loops for every join and test reading this view
    select distinct on (id)
        *
    from source
    order by id, updated_at desc, _loaded_at desc
),

final as (
    select
        id as ticket_id,
        requester_id,
        email_hash,
        channel,
        subject,
        category,
        lower(status) as ticket_status,
        lower(status) in ('open', 'pending') as is_open,
        priority,
        satisfaction_score,
        created_at,
        updated_at,
        closed_at,
        _loaded_at
    from latest
)

select * from final
