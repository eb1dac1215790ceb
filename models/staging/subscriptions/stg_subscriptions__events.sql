with

source as (
    select * from {{ source('raw_subscriptions', 'events') }}
),

latest as (
    -- the latest version of each record. distinct on, not row_number() = 1: the planner
    -- estimates one row per id for it, but guesses 0.5% of rows for a rank filter and then
    -- picks nested loops for every join and test reading this view
    select distinct on (id)
        *
    from source
    order by id, _loaded_at desc
),

final as (
    select
        id as subscription_event_id,
        subscription_id,
        customer_id as subscription_customer_id,
        lower(verb) as event_type,
        reason,
        created_at as occurred_at,
        _loaded_at
    from latest
)

select * from final
