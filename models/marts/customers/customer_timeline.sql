{{ config(materialized='view') }}
{#- Every event of every customer from every source, one row each, with a readable summary: the
    source events stored (incrementally) in int_timeline_events, plus segment entries and exits
    read live from segments.membership_changes, so a segment refresh shows on the timeline at
    once rather than at the next build. A view: queries by customer or by event type and date use
    the indexes of int_timeline_events. -#}

with

events as (
    select * from {{ ref('int_timeline_events') }}
),

segment_changes as (
    select * from {{ ref('stg_segments__membership_changes') }}
),

unioned as (
    select
        timeline_event_id,
        customer_id,
        occurred_at,
        source,
        event_type,
        source_event_id,
        amount,
        summary
    from events

    union all

    select
        -- one refresh records many customers at the same changed_at: the customer is part of
        -- the id (a customer changes at most once per segment per refresh)
        'segments:' || segment || ':' || customer_id || ':' || change || ':' || changed_at::text,
        customer_id,
        changed_at,
        'segments',
        'segment_' || change,
        segment || ':' || change,
        null::numeric(12,2),
        case when change in ('entered', 'enter') then 'Entered segment ' else 'Exited segment ' end
            || segment
    from segment_changes
)

select * from unioned
