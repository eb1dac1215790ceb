{{
    config(
        materialized='table',
        pre_hook="set work_mem = '256MB'",
        post_hook=[
            "{{ analyze_this(['klaviyo_event_id', 'klaviyo_profile_id', 'event_type', 'occurred_at']) }}",
        ],
    )
}}
{#- A table, not a view (the one exception in staging): several models read this large event
    stream and de-duplicating it once is much cheaper than once per reader. No index: readers
    join it on 'klaviyo:profile_id:' || klaviyo_profile_id or scan it, which no index serves. -#}

with

source as (
    select * from {{ source('raw_klaviyo', 'events') }}
),

latest as (
    select distinct on (id collate "C")
        id,
        profile_id,
        metric_id,
        metric_name,
        campaign_id,
        flow_id,
        value,
        properties::text as properties,
        datetime
    from source
    -- byte-order collation: sorting ids by locale rules is several times slower
    order by id collate "C", _loaded_at desc
),

final as (
    select
        id as klaviyo_event_id,
        profile_id as klaviyo_profile_id,
        metric_id,
        metric_name,
        case metric_name
            when 'Received Email' then 'email_received'
            when 'Opened Email' then 'email_opened'
            when 'Clicked Email' then 'email_clicked'
            when 'Unsubscribed' then 'email_unsubscribed'
            when 'Placed Order' then 'order_placed'
            when 'Viewed Product' then 'product_viewed'
            else lower(regexp_replace(metric_name, '\W+', '_', 'g'))
        end as event_type,
        campaign_id,
        flow_id,
        value::numeric(12,2) as event_value,
        {{ json_text_field('properties::text', 'subject') }} as email_subject,
        {{ json_text_field('properties::text', 'product_name') }} as product_name,
        datetime as occurred_at
    from latest
)

select * from final
